// Providers of one role in failover order, fed by the catalog (GET /api/providers).

import type { Provider, ProviderSpec } from "../api/types";
import { messagesFor } from "../lib/errors";

/** Secrets a spec still needs: none for an OpenAI-compatible server given its own base URL. */
export function missingSecrets(provider: Provider | undefined, spec: ProviderSpec): string[] {
  if (!provider) return [];
  if (provider.openai_compatible && spec.options.base_url) return [];
  return provider.secrets.filter((s) => !s.set).map((s) => s.name);
}

export function defaultSpec(provider: Provider): ProviderSpec {
  return { provider: provider.name, model: provider.default_model, options: {} };
}

/** `base_url` → `Base URL`, `cpu_threads` → `CPU threads`. */
export function optionLabel(name: string): string {
  const words = name.split("_").map((w) => (["url", "cpu", "id", "api"].includes(w) ? w.toUpperCase() : w));
  const text = words.join(" ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function optionValue(type: string, raw: string | boolean): unknown {
  if (typeof raw === "boolean") return raw;
  if (raw === "") return undefined;
  if (type === "number" || type === "integer") {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw;
  }
  return raw;
}

export function ProviderPicker(props: {
  role: string;
  catalog: Provider[];
  specs: ProviderSpec[];
  onChange: (specs: ProviderSpec[]) => void;
  error: unknown;
}) {
  const { role, catalog, specs, onChange, error } = props;
  const update = (i: number, spec: ProviderSpec) => onChange(specs.map((s, j) => (j === i ? spec : s)));
  const listErrors = messagesFor(error, role);
  return (
    <div className="stack" style={{ gap: 10 }}>
      {specs.map((spec, i) => {
        const provider = catalog.find((p) => p.name === spec.provider);
        const missing = missingSecrets(provider, spec);
        const path = `${role}.${i}`;
        const errs = (k: string) => messagesFor(error, `${path}.${k}`);
        const specErrors = [...messagesFor(error, path), ...errs("provider")];
        const modelId = `${role}-${i}-model`;
        return (
          <div className="provider-block" key={i} data-testid={`${role}-provider-${i}`}>
            {specs.length > 1 && <div className="order">{i === 0 ? "Primary" : `Fallback ${i}`}</div>}
            <div className="provider-row">
              <div className={`field${specErrors.length ? " invalid" : ""}`}>
                <label htmlFor={`${role}-${i}-provider`}>Provider</label>
                <select
                  id={`${role}-${i}-provider`}
                  className="select"
                  value={spec.provider}
                  onChange={(e) => {
                    const p = catalog.find((c) => c.name === e.target.value);
                    if (p) update(i, defaultSpec(p));
                  }}
                >
                  {!provider && <option value={spec.provider}>{spec.provider} (unknown)</option>}
                  {catalog.map((p) => {
                    const unset = p.secrets.filter((s) => !s.set);
                    return (
                      <option key={p.name} value={p.name}>
                        {p.label}
                        {p.local ? " · offline" : ""}
                        {unset.length ? ` · needs ${unset.map((s) => s.name).join(", ")}` : ""}
                      </option>
                    );
                  })}
                </select>
                {specErrors.map((m, k) => (
                  <div key={k} className="field-error">
                    {m}
                  </div>
                ))}
              </div>
              <div className={`field${errs("model").length ? " invalid" : ""}`}>
                <label htmlFor={modelId}>Model</label>
                {provider?.models && !(provider.openai_compatible && spec.options.base_url) ? (
                  <select
                    id={modelId}
                    className="select"
                    value={spec.model ?? ""}
                    onChange={(e) => update(i, { ...spec, model: e.target.value || null })}
                  >
                    <option value="">Default{provider.default_model ? ` (${provider.default_model})` : ""}</option>
                    {provider.models.map((m) => (
                      <option key={m}>{m}</option>
                    ))}
                  </select>
                ) : (
                  <>
                    <input
                      id={modelId}
                      className="input"
                      list={`${modelId}-list`}
                      value={spec.model ?? ""}
                      placeholder={provider?.default_model ?? "model name"}
                      onChange={(e) => update(i, { ...spec, model: e.target.value || null })}
                    />
                    <datalist id={`${modelId}-list`}>
                      {provider?.models?.map((m) => <option key={m} value={m} />)}
                    </datalist>
                  </>
                )}
                {errs("model").map((m, k) => (
                  <div key={k} className="field-error">
                    {m}
                  </div>
                ))}
              </div>
              <div className="field">
                <label>&nbsp;</label>
                <button
                  type="button"
                  className="btn ghost"
                  disabled={specs.length === 1}
                  title="Remove this provider"
                  onClick={() => onChange(specs.filter((_, j) => j !== i))}
                >
                  Remove
                </button>
              </div>
            </div>
            {missing.length > 0 && (
              <div className="alert warning small">
                Needs the secret {missing.join(", ")}, which is not set — sessions on this provider will
                fail until it is.
              </div>
            )}
            {provider && provider.options.length > 0 && (
              <div className="provider-opts">
                {provider.options.map((o) => {
                  const id = `${role}-${i}-opt-${o.name}`;
                  const value = spec.options[o.name];
                  const oErr = errs(`options.${o.name}`);
                  const set = (raw: string | boolean) => {
                    const options = { ...(spec.options ?? {}) };
                    const v = optionValue(o.type, raw);
                    if (v === undefined) delete options[o.name];
                    else options[o.name] = v;
                    update(i, { ...spec, options });
                  };
                  return (
                    <div key={o.name} className={`field${oErr.length ? " invalid" : ""}`}>
                      {o.type === "boolean" ? (
                        <label className="check" htmlFor={id}>
                          <input id={id} type="checkbox" checked={value === undefined ? !!o.default : !!value} onChange={(e) => set(e.target.checked)} />
                          {optionLabel(o.name)}
                        </label>
                      ) : (
                        <>
                          <label htmlFor={id}>
                            {optionLabel(o.name)}
                            {o.required ? " *" : ""}
                          </label>
                          <input
                            id={id}
                            className="input"
                            type={o.type === "string" ? "text" : "number"}
                            step="any"
                            value={value === undefined || value === null ? "" : String(value)}
                            placeholder={o.default !== null ? String(o.default) : ""}
                            onChange={(e) => set(e.target.value)}
                          />
                        </>
                      )}
                      {oErr.length ? (
                        oErr.map((m, k) => (
                          <div key={k} className="field-error">
                            {m}
                          </div>
                        ))
                      ) : (
                        <div className="hint">{o.description}</div>
                      )}
                    </div>
                  );
                })}
              </div>
            )}
          </div>
        );
      })}
      {listErrors.map((m, k) => (
        <div key={k} className="field-error">
          {m}
        </div>
      ))}
      <div>
        <button
          type="button"
          className="btn sm"
          disabled={specs.length >= 5 || !catalog.length}
          onClick={() => onChange([...specs, defaultSpec(catalog[0])])}
        >
          Add fallback provider
        </button>
      </div>
    </div>
  );
}
