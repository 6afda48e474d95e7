import { describe, expect, it } from "vitest";

import { errorDetail, scriptOptions, startErrorText } from "./options";

describe("scriptOptions", () => {
  it("reads the server from the script's own URL and the rest from data attributes", () => {
    expect(
      scriptOptions("https://stimm.example.com:8443/widget.js?v=1", { key: " stimm_pk_abc ", agent: "a1" }),
    ).toEqual({ server: "https://stimm.example.com:8443", publishableKey: "stimm_pk_abc", agentId: "a1", label: undefined });
  });

  it("leaves the agent to the key when none is given", () => {
    expect(scriptOptions("http://127.0.0.1:8000/widget.js", { key: "stimm_pk_x", agent: "" }).agentId).toBeUndefined();
  });

  it("refuses a tag without a key, saying which attribute is missing", () => {
    expect(() => scriptOptions("http://x/widget.js", {})).toThrow(/data-key/);
  });
});

describe("startErrorText", () => {
  it("explains a request the browser stopped as unreachable or a site that is not allowed", () => {
    expect(startErrorText(0)).toMatch(/not allowed to use this widget/);
  });

  it("passes on the server's reason for a refused agent or origin", () => {
    expect(startErrorText(403, "This publishable key cannot start sessions with agent b")).toContain("agent b");
  });

  it("asks to retry when limits or capacity stop the call", () => {
    expect(startErrorText(429)).toMatch(/try again/);
    expect(startErrorText(503)).toMatch(/No agent is free/);
  });
});

describe("errorDetail", () => {
  it("reads FastAPI's detail sentence and ignores validation lists", () => {
    expect(errorDetail({ detail: "nope" })).toBe("nope");
    expect(errorDetail({ detail: [{ msg: "x" }] })).toBeUndefined();
    expect(errorDetail(null)).toBeUndefined();
  });
});
