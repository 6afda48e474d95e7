import { describe, expect, it } from "vitest";

import type { Provider, ProviderSpec } from "../api/types";
import { missingSecrets, optionLabel } from "./ProviderPicker";

const openai: Provider = {
  name: "openai",
  label: "OpenAI",
  models: ["gpt-4o-mini"],
  default_model: "gpt-4o-mini",
  options: [],
  secrets: [{ name: "OPENAI_API_KEY", set: false }],
  local: false,
  openai_compatible: true,
  demo: false,
};

function spec(options: ProviderSpec["options"] = {}): ProviderSpec {
  return { provider: "openai", model: null, options };
}

describe("missingSecrets", () => {
  it("names a hosted provider's unset secret", () => {
    expect(missingSecrets(openai, spec())).toEqual(["OPENAI_API_KEY"]);
  });

  it("needs nothing once the secret is set", () => {
    const set = { ...openai, secrets: [{ name: "OPENAI_API_KEY", set: true }] };
    expect(missingSecrets(set, spec())).toEqual([]);
  });

  it("needs no hosted key for an OpenAI-compatible server at its own base URL", () => {
    expect(missingSecrets(openai, spec({ base_url: "http://llm:8080/v1" }))).toEqual([]);
  });
});

describe("optionLabel", () => {
  it("reads like a label", () => {
    expect(optionLabel("base_url")).toBe("Base URL");
    expect(optionLabel("cpu_threads")).toBe("CPU threads");
    expect(optionLabel("speed")).toBe("Speed");
  });
});
