// Agents whose LLM is the embedded demo model, which shows the path works but can make facts up.

import type { Provider, ProviderSpec } from "../api/types";

export const DEMO_LLM_NOTICE =
  "Demo model: a small offline LLM (SmolLM2-135M) that can make facts up. " +
  "For real conversations choose a hosted or self-hosted LLM.";

/** Whether any entry of `specs` (primary or fallback) runs on a provider the catalog marks demo. */
export function usesDemoModel(specs: ProviderSpec[], catalog: Provider[] | undefined): boolean {
  if (!catalog) return false;
  const demo = new Set(catalog.filter((p) => p.demo).map((p) => p.name));
  return specs.some((s) => demo.has(s.provider));
}
