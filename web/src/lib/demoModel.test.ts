import { describe, expect, it } from "vitest";

import type { Provider, ProviderSpec } from "../api/types";
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

function spec(provider: string): ProviderSpec {
  return { provider, model: null, options: {} };
}

const catalog = [provider("openai", false), provider("local", true), provider("groq", false)];

describe("usesDemoModel", () => {
  it("flags an LLM list whose primary is the demo model", () => {
    expect(usesDemoModel([spec("local")], catalog)).toBe(true);
  });

  it("flags the demo model as a fallback too: calls can land on it", () => {
    expect(usesDemoModel([spec("openai"), spec("local")], catalog)).toBe(true);
  });

  it("leaves hosted and self-hosted LLMs alone", () => {
    expect(usesDemoModel([spec("openai"), spec("groq")], catalog)).toBe(false);
    expect(usesDemoModel([], catalog)).toBe(false);
  });

  it("says nothing while the catalog is loading or for a provider it does not know", () => {
    expect(usesDemoModel([spec("local")], undefined)).toBe(false);
    expect(usesDemoModel([spec("gone")], catalog)).toBe(false);
  });
});
