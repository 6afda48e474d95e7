// The phone service as the console shows it (control_plane/api/routes/telephony.py).

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";
import type { TelephonyStatus } from "./types";

/** Polled so the page turns up or down without a reload. */
export const TELEPHONY_POLL_MS = 5000;

export function useTelephony() {
  return useQuery({
    queryKey: ["telephony"],
    queryFn: () => api.get<TelephonyStatus>("/api/telephony"),
    refetchInterval: TELEPHONY_POLL_MS,
  });
}
