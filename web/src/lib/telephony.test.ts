import { describe, expect, it } from "vitest";

import { dialUri, sipStatusText } from "./telephony";

describe("sipStatusText", () => {
  it("says where callers reach a running SIP service", () => {
    expect(sipStatusText({ sip: "up", sip_address: "127.0.0.1:5060" })).toEqual({
      tone: "ok",
      text: "SIP service is up — callers reach it at 127.0.0.1:5060",
    });
  });

  it("says how to show the address when the control plane does not know it", () => {
    const { tone, text } = sipStatusText({ sip: "up", sip_address: null });
    expect(tone).toBe("ok");
    expect(text).toMatch(/^SIP service is up — set STIMM_SIP_ADDRESS/);
  });

  it("warns that calls cannot arrive while it is down, and that saved numbers wait for it", () => {
    const { tone, text } = sipStatusText({ sip: "down", sip_address: "127.0.0.1:5060" });
    expect(tone).toBe("warning");
    expect(text).toBe(
      "SIP service is down — calls can't reach your numbers until it is back. " +
        "Numbers you save now are applied once it is up.",
    );
  });

  it("says why the status is unknown, with the address when there is one", () => {
    expect(sipStatusText({ sip: "unknown", sip_address: null })).toEqual({
      tone: "neutral",
      text: "SIP service status unknown (this control plane has no STIMM_SIP_HEALTH_URL)",
    });
    expect(sipStatusText({ sip: "unknown", sip_address: "sip.example.com:5060" }).text).toBe(
      "SIP service status unknown (this control plane has no STIMM_SIP_HEALTH_URL) — callers reach it at sip.example.com:5060",
    );
  });
});

describe("dialUri", () => {
  it("puts the number into the softphone URI", () => {
    expect(dialUri("sip:{number}@127.0.0.1:5060", "+15550100")).toBe("sip:+15550100@127.0.0.1:5060");
    expect(dialUri("sip:{number}@pbx.example.com", "support")).toBe("sip:support@pbx.example.com");
  });

  it("has nothing to show without a template", () => {
    expect(dialUri(null, "+15550100")).toBeNull();
    expect(dialUri(undefined, "+15550100")).toBeNull();
    expect(dialUri("", "+15550100")).toBeNull();
  });
});
