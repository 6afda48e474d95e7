import { describe, expect, it } from "vitest";

import type { Provider } from "../api/types";
import { usesDemoModel } from "./demoModel";

function provider(name: string, demo: boolean): Provider {
  return {
    name,
    label: name,
    models: null,
    default_model: null,
    options: [],
    secrets: [],
    local: demo,
    openai_compatible: true,
    demo,
  };
}

const catalog = [provider("openai", false), provider("local", true), provider("groq", false)];

describe("usesDemoModel", () => {
  it("flags an LLM list whose primary is the demo model", () => {
    expect(usesDemoModel([{ provider: "local" }], catalog)).toBe(true);
  });

  it("flags the demo model as a fallback too: calls can land on it", () => {
    expect(usesDemoModel([{ provider: "openai" }, { provider: "local" }], catalog)).toBe(true);
  });

  it("leaves hosted and self-hosted LLMs alone", () => {
    expect(usesDemoModel([{ provider: "openai" }, { provider: "groq" }], catalog)).toBe(false);
    expect(usesDemoModel([], catalog)).toBe(false);
  });

  it("says nothing while the catalog is loading or for a provider it does not know", () => {
    expect(usesDemoModel([{ provider: "local" }], undefined)).toBe(false);
    expect(usesDemoModel([{ provider: "gone" }], catalog)).toBe(false);
  });
});
