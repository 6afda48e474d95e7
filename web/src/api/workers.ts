// The live worker pool (control_plane/workers/) and its hook.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";
import type { Workers } from "./types";

/** Polled every few seconds: heartbeats arrive about that often. */
export const WORKERS_POLL_MS = 3000;

export function useWorkers() {
  return useQuery({
    queryKey: ["workers"],
    queryFn: () => api.get<Workers>("/api/workers"),
    refetchInterval: WORKERS_POLL_MS,
  });
}
