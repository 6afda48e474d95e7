// The tools an agent's LLM may call: webhooks, MCP servers, ending the call, transferring it
// (cold, or warm: a colleague is briefed first).

import { useState } from "react";

import { api } from "../api/client";
import type { McpServerTool, McpToolInfo, McpTools, Tool, WarmTransferTool, WebhookTool } from "../api/types";
import { Field } from "./ui";

const NEW_TOOL: Record<Tool["type"], Tool> = {
  webhook: {
    type: "webhook",
    name: "",
    description: "",
    parameters: { type: "object", properties: {} },
    url: "https://",
    method: "POST",
    headers: {},
    timeout_s: 5,
    failure_message: null,
  },
  mcp: {
    type: "mcp",
    name: "",
    url: "https://",
    transport: "streamable_http",
    headers: {},
    allowed_tools: null,
    timeout_s: 10,
  },
  end_call: { type: "end_call", description: null },
  transfer_call: { type: "transfer_call", target: "", description: null },
  warm_transfer: {
    type: "warm_transfer",
    target: "",
    description: null,
    hold_music: true,
    ringing_timeout_s: 30,
    decision_timeout_s: 20,
  },
};

const LABEL: Record<Tool["type"], string> = {
  webhook: "Webhook",
  mcp: "MCP server",
  end_call: "End the call",
  transfer_call: "Transfer the call",
  warm_transfer: "Warm transfer",
};

export function ToolsEditor(props: { tools: Tool[]; onChange: (tools: Tool[]) => void; error: unknown }) {
  const { tools, onChange, error } = props;
  const set = (i: number, t: Tool) => onChange(tools.map((x, j) => (j === i ? t : x)));
  return (
    <div className="stack" style={{ gap: 10 }}>
      {!tools.length && <div className="muted small">No tools: the agent only talks.</div>}
      {tools.map((tool, i) => (
        <div className="provider-block" key={i}>
          <div className="row">
            <span className="badge">{LABEL[tool.type]}</span>
            <span className="spacer" />
            <button type="button" className="btn sm ghost" onClick={() => onChange(tools.filter((_, j) => j !== i))}>
              Remove
            </button>
          </div>
          {tool.type === "webhook" && <WebhookFields tool={tool} path={`tools.${i}`} error={error} onChange={(t) => set(i, t)} />}
          {tool.type === "transfer_call" && (
            <Field label="Transfer to" path={`tools.${i}.target`} error={error} hint="tel:+15550100 or sip:desk@pbx">
              <input className="input" value={tool.target} onChange={(e) => set(i, { ...tool, target: e.target.value })} />
            </Field>
          )}
          {tool.type === "warm_transfer" && (
            <WarmTransferFields tool={tool} path={`tools.${i}`} error={error} onChange={(t) => set(i, t)} />
          )}
          {tool.type === "mcp" && <McpFields tool={tool} path={`tools.${i}`} error={error} onChange={(t) => set(i, t)} />}
          {tool.type !== "mcp" && (
            <Field label="When to use it" path={`tools.${i}.description`} error={error}>
              <input
                className="input"
                value={tool.description ?? ""}
                placeholder={tool.type === "webhook" ? "What the tool does, for the LLM" : "Optional"}
                onChange={(e) => set(i, { ...tool, description: e.target.value || (tool.type === "webhook" ? "" : null) } as Tool)}
              />
            </Field>
          )}
        </div>
      ))}
      <div className="row">
        {(Object.keys(NEW_TOOL) as Tool["type"][]).map((type) => (
          <button key={type} type="button" className="btn sm" onClick={() => onChange([...tools, structuredClone(NEW_TOOL[type])])}>
            Add {LABEL[type].toLowerCase()}
          </button>
        ))}
      </div>
    </div>
  );
}

function WarmTransferFields(props: {
  tool: WarmTransferTool;
  path: string;
  error: unknown;
  onChange: (t: WarmTransferTool) => void;
}) {
  const { tool, path, error, onChange } = props;
  return (
    <>
      <Field
        label="Colleague's number"
        path={`${path}.target`}
        error={error}
        hint="Phoned through the outbound trunk, e.g. +15550100; they hear a summary and press 1 (or say yes) to take the call"
      >
        <input className="input" value={tool.target} onChange={(e) => onChange({ ...tool, target: e.target.value })} />
      </Field>
      <div className="grid-2">
        <Field label="Ringing timeout (s)" path={`${path}.ringing_timeout_s`} error={error}>
          <input
            className="input"
            type="number"
            step="any"
            value={tool.ringing_timeout_s}
            onChange={(e) => onChange({ ...tool, ringing_timeout_s: Number(e.target.value) })}
          />
        </Field>
        <Field label="Answer timeout (s)" path={`${path}.decision_timeout_s`} error={error} hint="Silence declines">
          <input
            className="input"
            type="number"
            step="any"
            value={tool.decision_timeout_s}
            onChange={(e) => onChange({ ...tool, decision_timeout_s: Number(e.target.value) })}
          />
        </Field>
      </div>
      <label className="row small">
        <input type="checkbox" checked={tool.hold_music} onChange={(e) => onChange({ ...tool, hold_music: e.target.checked })} />
        Hold music while the caller waits
      </label>
    </>
  );
}

function WebhookFields(props: { tool: WebhookTool; path: string; error: unknown; onChange: (t: WebhookTool) => void }) {
  const { tool, path, error, onChange } = props;
  const [schema, setSchema] = useState(() => JSON.stringify(tool.parameters, null, 2));
  const [schemaError, setSchemaError] = useState<string | null>(null);
  return (
    <>
      <div className="grid-2">
        <Field label="Name" path={`${path}.name`} error={error} hint="An identifier, e.g. book_table">
          <input className="input" value={tool.name} onChange={(e) => onChange({ ...tool, name: e.target.value })} />
        </Field>
        <div className="grid-2">
          <Field label="Method" path={`${path}.method`} error={error}>
            <select className="select" value={tool.method} onChange={(e) => onChange({ ...tool, method: e.target.value as "GET" | "POST" })}>
              <option>POST</option>
              <option>GET</option>
            </select>
          </Field>
          <Field label="Timeout (s)" path={`${path}.timeout_s`} error={error}>
            <input className="input" type="number" step="any" value={tool.timeout_s} onChange={(e) => onChange({ ...tool, timeout_s: Number(e.target.value) })} />
          </Field>
        </div>
      </div>
      <Field label="URL" path={`${path}.url`} error={error}>
        <input className="input" value={tool.url} onChange={(e) => onChange({ ...tool, url: e.target.value })} />
      </Field>
      <Field label="Arguments (JSON schema)" path={`${path}.parameters`} error={error}>
        <textarea
          className="textarea mono"
          rows={4}
          value={schema}
          onChange={(e) => {
            setSchema(e.target.value);
            try {
              onChange({ ...tool, parameters: JSON.parse(e.target.value) as Record<string, unknown> });
              setSchemaError(null);
            } catch {
              setSchemaError("Not valid JSON yet.");
            }
          }}
        />
        {schemaError && <div className="field-error">{schemaError}</div>}
      </Field>
    </>
  );
}

function McpFields(props: { tool: McpServerTool; path: string; error: unknown; onChange: (t: McpServerTool) => void }) {
  const { tool, path, error, onChange } = props;
  const [offered, setOffered] = useState<McpToolInfo[] | null>(null);
  const [listError, setListError] = useState<string | null>(null);
  const [listing, setListing] = useState(false);
  const list = async () => {
    setListing(true);
    setListError(null);
    try {
      setOffered((await api.post<McpTools>("/api/mcp/tools", tool)).tools);
    } catch (e) {
      setOffered(null);
      setListError((e as Error).message);
    } finally {
      setListing(false);
    }
  };
  return (
    <>
      <div className="grid-2">
        <Field label="Name" path={`${path}.name`} error={error} hint="Said to callers if it is down: “my calendar tools”">
          <input className="input" value={tool.name} onChange={(e) => onChange({ ...tool, name: e.target.value })} />
        </Field>
        <div className="grid-2">
          <Field label="Transport" path={`${path}.transport`} error={error}>
            <select className="select" value={tool.transport} onChange={(e) => onChange({ ...tool, transport: e.target.value as McpServerTool["transport"] })}>
              <option value="streamable_http">Streamable HTTP</option>
              <option value="sse">SSE</option>
            </select>
          </Field>
          <Field label="Timeout (s)" path={`${path}.timeout_s`} error={error}>
            <input className="input" type="number" step="any" value={tool.timeout_s} onChange={(e) => onChange({ ...tool, timeout_s: Number(e.target.value) })} />
          </Field>
        </div>
      </div>
      <Field label="URL" path={`${path}.url`} error={error} hint="e.g. http://mcp:8000/mcp">
        <input className="input" value={tool.url} onChange={(e) => onChange({ ...tool, url: e.target.value })} />
      </Field>
      <div className="row">
        <button type="button" className="btn sm" disabled={listing} onClick={() => void list()}>
          {listing ? "Connecting…" : "Show its tools"}
        </button>
      </div>
      {listError && <div className="field-error" role="alert">{listError}</div>}
      {offered && (
        <ul className="small" data-testid="mcp-tools">
          {!offered.length && <li className="muted">The server offers no tools.</li>}
          {offered.map((t) => (
            <li key={t.name}>
              <span className="mono">{t.name}</span>
              {t.description && <span className="muted"> — {t.description}</span>}
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
