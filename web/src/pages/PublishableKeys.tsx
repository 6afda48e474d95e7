import { useState } from "react";
import { Link } from "react-router";

import {
  type PublishableKey,
  useCreatePublishableKey,
  usePublishableKeys,
  useRevokePublishableKey,
} from "../api/publishableKeys";
import { useAgents } from "../api/queries";
import type { Agent } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { FormModal } from "../components/FormModal";
import { Empty, Field, Modal, PageHead, QueryTable, formatDate } from "../components/ui";
import { parseOrigins, widgetSnippet } from "../lib/widget";

/** Publishable keys: what the embeddable widget starts sessions with, and its snippet. */
export function PublishableKeysPage() {
  const keys = usePublishableKeys();
  const agents = useAgents();
  const [creating, setCreating] = useState(false);
  const [snippetOf, setSnippetOf] = useState<PublishableKey | null>(null);
  const revoke = useConfirm(useRevokePublishableKey(), (k: PublishableKey) => ({
    title: `Revoke ${k.name}?`,
    confirm: "Revoke key",
    text: "Widgets with this key can start no session from now on. Sessions in progress keep running.",
    variables: k.id,
  }));
  const agentName = (id: string) => agents.data?.items.find((a) => a.id === id)?.name ?? id.slice(0, 8);

  return (
    <>
      <PageHead
        title="Publishable keys"
        sub="Put an agent on your website: a key for the widget that can only start sessions with its agents, from its sites."
        actions={
          <button className="btn primary" onClick={() => setCreating(true)}>
            New publishable key
          </button>
        }
      />
      <div className="card">
        <QueryTable
          query={keys}
          what="publishable keys"
          empty={
            <Empty title="No publishable keys yet">
              <p>Create one for the sites that embed the talk button; it cannot read or change anything.</p>
            </Empty>
          }
          columns={["Name", "Agents", "Allowed sites", "Created", ""]}
        >
          {(k) => (
            <tr key={k.id} data-testid="publishable-key-row">
              <td>
                <div className="cell-title">{k.name}</div>
                <div className="cell-sub mono copyable">{k.key}</div>
              </td>
              <td>
                {k.agent_ids.map((id, i) => (
                  <span key={id}>
                    {i > 0 && ", "}
                    <Link to={`/agents/${id}`}>{agentName(id)}</Link>
                  </span>
                ))}
              </td>
              <td className="mono small">{k.allowed_origins.join(", ")}</td>
              <td className="muted">{formatDate(k.created_at)}</td>
              <td className="actions">
                {k.revoked_at ? (
                  <span className="badge red" title={formatDate(k.revoked_at)}>
                    <span className="dot" />
                    Revoked
                  </span>
                ) : (
                  <>
                    <button className="btn sm" onClick={() => setSnippetOf(k)}>
                      Snippet
                    </button>{" "}
                    <button className="btn sm danger" onClick={() => revoke.ask(k)}>
                      Revoke
                    </button>
                  </>
                )}
              </td>
            </tr>
          )}
        </QueryTable>
      </div>
      {creating && (
        <CreateKey
          agents={agents.data?.items ?? []}
          onClose={() => setCreating(false)}
          onCreated={(k) => {
            setCreating(false);
            setSnippetOf(k);
          }}
        />
      )}
      {snippetOf && <Snippet publishableKey={snippetOf} onClose={() => setSnippetOf(null)} />}
      {revoke.dialog}
    </>
  );
}

const SHOWN = ["name", "agent_ids", "allowed_origins"];

function CreateKey(props: { agents: Agent[]; onClose: () => void; onCreated: (k: PublishableKey) => void }) {
  const { agents, onClose, onCreated } = props;
  const create = useCreatePublishableKey();
  const [name, setName] = useState("");
  const [agentIds, setAgentIds] = useState<string[]>(agents.length === 1 ? [agents[0]!.id] : []);
  const [origins, setOrigins] = useState("");
  const err = create.error;
  const toggle = (id: string) =>
    setAgentIds((ids) => (ids.includes(id) ? ids.filter((x) => x !== id) : [...ids, id]));

  return (
    <FormModal
      title="New publishable key"
      submit="Create key"
      onSubmit={() =>
        create.mutate(
          { name: name.trim(), agent_ids: agentIds, allowed_origins: parseOrigins(origins) },
          { onSuccess: onCreated },
        )
      }
      onClose={onClose}
      pending={create.isPending}
      error={err}
      shown={SHOWN}
    >
      <Field label="Name" htmlFor="pk-name" path="name" error={err} hint="e.g. Shop website">
        <input id="pk-name" className="input" value={name} autoFocus onChange={(e) => setName(e.target.value)} />
      </Field>
      <Field
        label="Agents"
        path="agent_ids"
        prefix
        error={err}
        hint={agents.length ? "The widget can start sessions with these agents only; the first is its default." : <Link to="/agents/new">Create an agent first</Link>}
      >
        <div className="stack" style={{ gap: 4 }}>
          {agents.map((a) => (
            <label key={a.id} className="row" style={{ gap: 8, fontWeight: 400 }}>
              <input type="checkbox" checked={agentIds.includes(a.id)} onChange={() => toggle(a.id)} />
              {a.name}
            </label>
          ))}
        </div>
      </Field>
      <Field
        label="Allowed sites"
        htmlFor="pk-origins"
        path="allowed_origins"
        prefix
        error={err}
        hint="Origins of the pages that embed the widget, one per line: scheme, host and port, no path."
      >
        <textarea
          id="pk-origins"
          className="textarea mono"
          rows={3}
          style={{ minHeight: 64 }}
          value={origins}
          placeholder="https://www.example.com"
          onChange={(e) => setOrigins(e.target.value)}
        />
      </Field>
    </FormModal>
  );
}

function Snippet({ publishableKey, onClose }: { publishableKey: PublishableKey; onClose: () => void }) {
  const snippet = widgetSnippet(window.location.origin, publishableKey.key);
  return (
    <Modal
      title={`Put ${publishableKey.name} on your site`}
      onClose={onClose}
      footer={
        <button className="btn primary" onClick={onClose}>
          Done
        </button>
      }
    >
      <p style={{ marginTop: 0 }}>
        Paste this tag into the pages of {publishableKey.allowed_origins.join(", ")}. It adds a talk button with
        live captions; add <code>data-agent="…"</code> to pick one of the key's other agents.
      </p>
      <pre className="mono copyable" data-testid="widget-snippet" style={{ whiteSpace: "pre-wrap", wordBreak: "break-all" }}>
        {snippet}
      </pre>
      <p className="small muted" style={{ marginBottom: 0 }}>
        In a React app: <code>{`<StimmWidget server="${window.location.origin}" publishableKey="${publishableKey.key}" />`}</code> from{" "}
        <code>@stimm/widget</code> (web/widget).
      </p>
    </Modal>
  );
}
