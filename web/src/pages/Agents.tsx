import { Link, useNavigate } from "react-router";

import { useAgents, useDeleteAgent, useDuplicateAgent, useKnowledgeBases, useProviders } from "../api/queries";
import type { Agent, Provider, ProviderSpec } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { Empty, ErrorAlert, PageHead, QueryTable, RowActions, formatDate } from "../components/ui";
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
  const remove = useConfirm(useDeleteAgent(), (agent: Agent) => ({
    title: `Delete ${agent.name}?`,
    confirm: "Delete agent",
    text: "The agent and its settings are removed. Sessions in progress keep running.",
    variables: agent.id,
  }));
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
        <QueryTable
          query={agents}
          what="agents"
          empty={
            <Empty title="No agents yet">
              <p>Create one to talk to it from the browser or a phone line.</p>
            </Empty>
          }
          columns={["Agent", "Speech to text", "LLM", "Text to speech", "Knowledge base", "Updated", ""]}
        >
          {(a) => (
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
              <RowActions>
                <Link className="btn sm" to={`/talk?agent=${a.id}`}>
                  Talk
                </Link>{" "}
                <button className="btn sm" onClick={() => duplicate.mutate(a.id)} disabled={duplicate.isPending}>
                  Duplicate
                </button>{" "}
                <button className="btn sm danger" onClick={() => remove.ask(a)}>
                  Delete
                </button>
              </RowActions>
            </tr>
          )}
        </QueryTable>
      </div>
      {remove.dialog}
    </>
  );
}
