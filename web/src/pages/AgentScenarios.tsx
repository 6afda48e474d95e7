// An agent's test scenarios: the YAML file, saved and run on the control plane in text mode.

import { useState } from "react";

import { useRunScenarios, useSaveScenarios, useScenarios } from "../api/queries";
import type { AgentScenarios, ScenarioResult, SuiteResult } from "../api/types";
import { ErrorAlert, Field, Loading, formatDate } from "../components/ui";
import { messagesFor } from "../lib/errors";

const EXAMPLE = `scenarios:
  - name: Opening hours
    turns:
      - user: When are you open?
        expect:
          - says: Sunday
          - not_calls: transfer_call
          - judge: Tells the caller when the museum opens
`;

export function ScenariosPanel({ agentId }: { agentId: string }) {
  const scenarios = useScenarios(agentId);
  return (
    <section className="card" aria-label="Test scenarios" style={{ marginTop: 16 }}>
      <div className="card-head">
        <div>
          <h2>Test scenarios</h2>
          <p className="muted small">
            The caller's turns as text, and checks on the agent's replies and tool calls (says, not_says, calls,
            not_calls, judge). They run against the saved agent's LLM and tools, without audio.
          </p>
        </div>
      </div>
      <div className="card-body">
        {scenarios.error ? (
          <ErrorAlert error={scenarios.error} />
        ) : scenarios.data ? (
          <ScenariosEditor agentId={agentId} initial={scenarios.data} />
        ) : (
          <Loading what="the scenarios" />
        )}
      </div>
    </section>
  );
}

function ScenariosEditor({ agentId, initial }: { agentId: string; initial: AgentScenarios }) {
  const [text, setText] = useState(initial.yaml);
  const [saved, setSaved] = useState(initial.yaml);
  const save = useSaveScenarios(agentId);
  const run = useRunScenarios(agentId);
  const result = run.data ?? (saved === initial.yaml ? initial.last_run : null);
  const unsaved = text !== saved;

  function onSave() {
    save.mutate(text, { onSuccess: (row) => setSaved(row.yaml) });
  }

  return (
    <>
      <Field
        label="Scenarios (YAML)"
        htmlFor="scenarios-yaml"
        path="yaml"
        prefix
        error={save.error}
        hint="Each scenario is one conversation; it stops at its first failed check."
      >
        <textarea
          id="scenarios-yaml"
          className="textarea mono"
          rows={14}
          spellCheck={false}
          placeholder={EXAMPLE}
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
      </Field>
      <div className="row" style={{ marginTop: 8 }}>
        <button type="button" className="btn" disabled={!unsaved || save.isPending} onClick={onSave}>
          {save.isPending ? "Saving…" : "Save scenarios"}
        </button>
        <button
          type="button"
          className="btn primary"
          disabled={unsaved || !saved.trim() || run.isPending}
          title={unsaved ? "Save the scenarios first" : undefined}
          onClick={() => run.mutate()}
        >
          {run.isPending ? "Running…" : "Run scenarios"}
        </button>
        {!unsaved && saved.trim() && !save.error && <span className="muted small">Saved</span>}
      </div>
      {save.error && !messagesFor(save.error, "yaml", true).length && <ErrorAlert error={save.error} />}
      {run.error && <ErrorAlert error={run.error} />}
      {run.isPending && (
        <div className="muted small" style={{ marginTop: 12 }}>
          <span className="spinner" /> Running the scenarios against the agent's LLM…
        </div>
      )}
      {result && !run.isPending && (
        <RunResult result={result} at={run.data ? null : initial.last_run_at} />
      )}
    </>
  );
}

function RunResult({ result, at }: { result: SuiteResult; at: string | null }) {
  const passed = result.scenarios.filter((s) => s.passed).length;
  return (
    <div style={{ marginTop: 16 }} data-testid="scenario-results">
      <div className="row">
        <span className={`badge ${result.passed ? "green" : "red"}`}>
          {passed} of {result.scenarios.length} passed
        </span>
        <span className="muted small">
          {result.duration_s.toFixed(1)} s{at ? ` · last run ${formatDate(at)}` : ""}
        </span>
      </div>
      {result.warnings.map((w, i) => (
        <div key={i} className="alert warning" role="note" style={{ marginTop: 8 }}>
          {w}
        </div>
      ))}
      <ul className="stack" style={{ listStyle: "none", padding: 0, marginTop: 8 }}>
        {result.scenarios.map((s) => (
          <ScenarioRow key={s.name} scenario={s} />
        ))}
      </ul>
    </div>
  );
}

function ScenarioRow({ scenario }: { scenario: ScenarioResult }) {
  const failed = scenario.checks.find((c) => !c.passed);
  return (
    <li data-testid="scenario-result" aria-label={scenario.name} style={{ padding: "8px 0", borderTop: "1px solid var(--border)" }}>
      <div className="row">
        <span className={`badge ${scenario.passed ? "green" : "red"}`}>{scenario.passed ? "Passed" : "Failed"}</span>
        <strong>{scenario.name}</strong>
        <span className="muted small">{scenario.checks.filter((c) => c.passed).length} checks passed</span>
      </div>
      {failed && (
        <div className="small" style={{ marginTop: 4 }}>
          Turn {failed.turn}: <code>{failed.check}</code>
          {failed.detail && <div className="muted">{failed.detail}</div>}
        </div>
      )}
      {scenario.error && (
        <div className="field-error" style={{ marginTop: 4 }}>
          {scenario.error}
        </div>
      )}
      {scenario.transcript.length > 0 && (
        <details style={{ marginTop: 4 }}>
          <summary className="muted small">Conversation</summary>
          <pre className="mono" style={{ whiteSpace: "pre-wrap", margin: "4px 0 0" }}>
            {scenario.transcript.join("\n")}
          </pre>
        </details>
      )}
    </li>
  );
}
