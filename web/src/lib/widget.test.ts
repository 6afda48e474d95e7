import { describe, expect, it } from "vitest";

import { parseOrigins, widgetSnippet } from "./widget";

describe("widgetSnippet", () => {
  it("loads widget.js from the control plane with the key and, when chosen, the agent", () => {
    expect(widgetSnippet("https://stimm.example.com/", "stimm_pk_abc", "a1")).toBe(
      '<script src="https://stimm.example.com/widget.js" data-key="stimm_pk_abc" data-agent="a1" async></script>',
    );
    expect(widgetSnippet("http://127.0.0.1:8000", "stimm_pk_abc")).not.toContain("data-agent");
  });
});

describe("parseOrigins", () => {
  it("takes one origin per line or comma and drops blanks", () => {
    expect(parseOrigins(" https://a.example \n\nhttps://b.example, http://localhost:5173 ")).toEqual([
      "https://a.example",
      "https://b.example",
      "http://localhost:5173",
    ]);
  });
});
