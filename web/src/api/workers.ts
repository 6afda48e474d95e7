// The live worker pool (control_plane/workers/models.py) and its hook.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";

export interface Worker {
  worker_id: string;
  hostname: string;
  pid: number | null;
  /** 0–1; LiveKit sends no new job at or above `threshold`. */
  load: number;
  threshold: number;
  max_sessions: number;
  active_jobs: number;
  sessions: string[];
  draining: boolean;
  p95_latency_s: number | null;
  cpu_share: number;
  jobs_accepted: number;
  jobs_failed: number;
  status_url: string | null;
  metrics_url: string | null;
  last_seen_at: string;
  full: boolean;
}

export interface Workers {
  items: Worker[];
  count: number;
  /** Sessions running on all live workers. */
  sessions: number;
  /** Session slots of the live workers that are not draining. */
  capacity: number;
}

/** Polled every few seconds: heartbeats arrive about that often. */
export const WORKERS_POLL_MS = 3000;

export function useWorkers() {
  return useQuery({
    queryKey: ["workers"],
    queryFn: () => api.get<Workers>("/api/workers"),
    refetchInterval: WORKERS_POLL_MS,
  });
}
