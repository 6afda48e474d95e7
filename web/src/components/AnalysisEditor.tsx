// The post-call analysis settings of an agent: a summary and the fields its LLM extracts.

import type { AgentConfig, AnalysisField } from "../api/types";
import { Field } from "./ui";

type Analysis = AgentConfig["analysis"];

const TYPES: { value: AnalysisField["type"]; label: string }[] = [
  { value: "string", label: "Text" },
  { value: "boolean", label: "Yes / no" },
  { value: "number", label: "Number" },
  { value: "integer", label: "Whole number" },
];

export function AnalysisEditor(props: { analysis: Analysis; onChange: (a: Analysis) => void; error: unknown }) {
  const { analysis: a, onChange, error } = props;
  const setField = (i: number, patch: Partial<AnalysisField>) =>
    onChange({ ...a, fields: a.fields.map((f, j) => (j === i ? { ...f, ...patch } : f)) });
  return (
    <>
      <div className="grid-3">
        <label className="check">
          <input type="checkbox" checked={a.enabled} onChange={(e) => onChange({ ...a, enabled: e.target.checked })} />
          Analyse each call when it ends
        </label>
        <label className="check">
          <input type="checkbox" disabled={!a.enabled} checked={a.summary} onChange={(e) => onChange({ ...a, summary: e.target.checked })} />
          Write a summary
        </label>
      </div>
      {a.fields.map((f, i) => (
        <div className="grid-3" key={i} data-testid="analysis-field">
          <Field label="Field name" htmlFor={`af-name-${i}`} path={`analysis.fields.${i}.name`} error={error} hint="lower_case, e.g. callback_number">
            <input id={`af-name-${i}`} className="input mono" disabled={!a.enabled} value={f.name} onChange={(e) => setField(i, { name: e.target.value })} />
          </Field>
          <Field label="Type" htmlFor={`af-type-${i}`} path={`analysis.fields.${i}.type`} error={error}>
            <select id={`af-type-${i}`} className="select" disabled={!a.enabled} value={f.type} onChange={(e) => setField(i, { type: e.target.value as AnalysisField["type"] })}>
              {TYPES.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          </Field>
          <Field label="What to extract" htmlFor={`af-desc-${i}`} path={`analysis.fields.${i}.description`} error={error}>
            <div className="row" style={{ gap: 8 }}>
              <input id={`af-desc-${i}`} className="input" disabled={!a.enabled} value={f.description} onChange={(e) => setField(i, { description: e.target.value })} />
              <button type="button" className="btn sm danger" aria-label={`Remove field ${f.name || i + 1}`} onClick={() => onChange({ ...a, fields: a.fields.filter((_, j) => j !== i) })}>
                Remove
              </button>
            </div>
          </Field>
        </div>
      ))}
      <div>
        <button type="button" className="btn sm" disabled={!a.enabled} onClick={() => onChange({ ...a, fields: [...a.fields, { name: "", type: "string", description: "" }] })}>
          Add field
        </button>
      </div>
    </>
  );
}
