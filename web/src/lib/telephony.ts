// What the Phone numbers page says about the SIP service, and the URI a softphone dials.

import type { TelephonyStatus } from "../api/types";

export interface SipStatusText {
  /** The block's colour: calm when up, a warning when down, neutral when nobody can tell. */
  tone: "ok" | "warning" | "neutral";
  text: string;
}

export function sipStatusText(status: Pick<TelephonyStatus, "sip" | "sip_address">): SipStatusText {
  const address = status.sip_address;
  switch (status.sip) {
    case "up":
      return {
        tone: "ok",
        text: address
          ? `SIP service is up — callers reach it at ${address}`
          : "SIP service is up — set STIMM_SIP_ADDRESS on the control plane to show the address callers use",
      };
    case "down":
      return {
        tone: "warning",
        text:
          "SIP service is down — calls can't reach your numbers until it is back. " +
          "Numbers you save now are applied once it is up.",
      };
    default:
      return {
        tone: "neutral",
        text:
          "SIP service status unknown (this control plane has no STIMM_SIP_HEALTH_URL)" +
          (address ? ` — callers reach it at ${address}` : ""),
      };
  }
}

/** `sip:{number}@host:port` and `+15550100` → `sip:+15550100@host:port`; null without a template. */
export function dialUri(template: string | null | undefined, number: string): string | null {
  if (!template) return null;
  return template.split("{number}").join(number);
}
