// The phone service as the console shows it (control_plane/api/routes/telephony.py) and its hook.

import { useQuery } from "@tanstack/react-query";

import { api } from "./client";

export type SipHealth = "up" | "down" | "unknown";

export interface TelephonyStatus {
  /** livekit-sip's health; `unknown` when the control plane has no STIMM_SIP_HEALTH_URL. */
  sip: SipHealth;
  /** `host:port` callers and SIP trunks send calls to. */
  sip_address: string | null;
  /** What a softphone dials, with `{number}` standing for a phone number. */
  dial_uri_template: string | null;
  /** Whether POST /api/calls can place calls. */
  outbound_calls: boolean;
}

/** Polled so the page turns up or down without a reload. */
export const TELEPHONY_POLL_MS = 5000;

export function useTelephony() {
  return useQuery({
    queryKey: ["telephony"],
    queryFn: () => api.get<TelephonyStatus>("/api/telephony"),
    refetchInterval: TELEPHONY_POLL_MS,
  });
}
