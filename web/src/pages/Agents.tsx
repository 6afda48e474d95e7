import { useState } from "react";
import { Link, useNavigate } from "react-router";

import { useAgents, useDeleteAgent, useDuplicateAgent, useKnowledgeBases, useProviders } from "../api/queries";
import type { Agent, Provider, ProviderSpec } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { Empty, ErrorAlert, PageHead, QueryList, formatDate } from "../components/ui";
import { DEMO_LLM_NOTICE, usesDemoModel } from "../lib/demoModel";

function providerText(specs: ProviderSpec[], catalog: Provider[] | undefined): string {
  const [first, ...rest] = specs;
  if (!first) return "—";
  const label = catalog?.find((p) => p.name === first.provider)?.label ?? first.provider;
  const main = first.model ? `${label} · ${first.model}` : label;
  return rest.length ? `${main} (+${rest.length} fallback)` : main;
}

export function AgentsPage() {
  const agents = useAgents();
  const kbs = useKnowledgeBases();
  const providers = useProviders().data;
  const duplicate = useDuplicateAgent();
  const navigate = useNavigate();
  const [deleting, setDeleting] = useState<Agent | null>(null);
  const kbName = (id: string | null) => (id ? kbs.data?.items.find((k) => k.id === id)?.name ?? "—" : "—");

  return (
    <>
      <PageHead
        title="Agents"
        sub="What each voice agent says, how it listens, and which providers it runs on."
        actions={
          <Link className="btn primary" to="/agents/new">
            New agent
          </Link>
        }
      />
      <ErrorAlert error={duplicate.error} />
      <div className="card">
        <QueryList
          query={agents}
          what="agents"
          empty={
            <Empty title="No agents yet">
              <p>Create one to talk to it from the browser or a phone line.</p>
            </Empty>
          }
        >
          {(items) => (
            <table className="table">
              <thead>
                <tr>
                  <th>Agent</th>
                  <th>Speech to text</th>
                  <th>LLM</th>
                  <th>Text to speech</th>
                  <th>Knowledge base</th>
                  <th>Updated</th>
                  <th />
                </tr>
              </thead>
              <tbody>
                {items.map((a) => (
                  <tr key={a.id} className="clickable" onClick={() => navigate(`/agents/${a.id}`)}>
                    <td>
                      <div className="cell-title">
                        {a.name} {a.is_default && <span className="badge blue">default</span>}
                      </div>
                      <div className="cell-sub">{a.language}</div>
                    </td>
                    <td>{providerText(a.stt, providers?.stt)}</td>
                    <td>
                      {providerText(a.llm, providers?.llm)}{" "}
                      {usesDemoModel(a.llm, providers?.llm) && (
                        <span className="badge amber" title={DEMO_LLM_NOTICE} data-testid="demo-llm-notice">
                          demo LLM
                        </span>
                      )}
                    </td>
                    <td>{providerText(a.tts, providers?.tts)}</td>
                    <td>{kbName(a.knowledge_base_id)}</td>
                    <td className="muted">{formatDate(a.updated_at)}</td>
                    <td className="actions" onClick={(e) => e.stopPropagation()}>
                      <Link className="btn sm" to={`/talk?agent=${a.id}`}>
                        Talk
                      </Link>{" "}
                      <button className="btn sm" onClick={() => duplicate.mutate(a.id)} disabled={duplicate.isPending}>
                        Duplicate
                      </button>{" "}
                      <button className="btn sm danger" onClick={() => setDeleting(a)}>
                        Delete
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </QueryList>
      </div>
      {deleting && <DeleteAgent agent={deleting} onClose={() => setDeleting(null)} />}
    </>
  );
}

function DeleteAgent({ agent, onClose }: { agent: Agent; onClose: () => void }) {
  const del = useDeleteAgent();
  return (
    <ConfirmDialog
      title={`Delete ${agent.name}?`}
      confirm="Delete agent"
      onConfirm={() => del.mutate(agent.id, { onSuccess: onClose })}
      onCancel={onClose}
      pending={del.isPending}
      error={del.error}
    >
      The agent and its settings are removed. Sessions in progress keep running.
    </ConfirmDialog>
  );
}
