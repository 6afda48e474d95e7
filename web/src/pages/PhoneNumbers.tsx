import { useState } from "react";
import { Link } from "react-router";

import { useAgents } from "../api/queries";
import { useDeletePhoneNumber, usePhoneNumbers } from "../api/phoneNumbers";
import { useTelephony } from "../api/telephony";
import type { PhoneNumber } from "../api/types";
import { useConfirm } from "../components/ConfirmDialog";
import { Empty, PageHead, QueryTable, RowActions, formatDate } from "../components/ui";
import { errorMessage } from "../lib/errors";
import { type SipStatusText, dialUri, sipStatusText } from "../lib/telephony";
import { OutboundCallCard } from "./PhoneNumbersCall";
import { PhoneNumberForm } from "./PhoneNumbersForm";

export function PhoneNumbersPage() {
  const numbers = usePhoneNumbers();
  const agents = useAgents();
  const dialTemplate = useTelephony().data?.dial_uri_template;
  const [editing, setEditing] = useState<PhoneNumber | "new" | null>(null);
  const remove = useConfirm(useDeletePhoneNumber(), (number: PhoneNumber) => ({
    title: `Delete ${number.number}?`,
    confirm: "Delete number",
    text: "Calls to this number are refused from now on; its trunk and dispatch rule are removed from LiveKit. Calls in progress keep running.",
    variables: number.id,
  }));
  const agentName = (id: string) => agents.data?.items.find((a) => a.id === id)?.name ?? "…";

  return (
    <>
      <PageHead
        title="Phone numbers"
        sub="Which agent answers each number callers dial. Changes reach LiveKit SIP at once."
        actions={
          <button className="btn primary" onClick={() => setEditing("new")}>
            Add number
          </button>
        }
      />
      <div className="stack">
        <SipStatus />
        <div className="card">
          <QueryTable
            query={numbers}
            what="phone numbers"
            empty={
              <Empty title="No phone numbers yet">
                <p>Add the number your SIP provider routes to Stimm, and pick the agent that answers it.</p>
              </Empty>
            }
            columns={["Number", "Answered by", "Who may call", "LiveKit", "Updated", ""]}
          >
            {(n) => (
              <tr key={n.id} className="clickable" data-testid="phone-number-row" onClick={() => setEditing(n)}>
                <td>
                  <div className="cell-title mono">{n.number}</div>
                  {n.name && <div className="cell-sub">{n.name}</div>}
                  {dialTemplate && (
                    <div
                      className="cell-sub mono copyable"
                      data-testid="dial-uri"
                      title="What a softphone dials to reach this number"
                      onClick={(e) => e.stopPropagation()}
                    >
                      {dialUri(dialTemplate, n.number)}
                    </div>
                  )}
                </td>
                <td onClick={(e) => e.stopPropagation()}>
                  <Link to={`/agents/${n.agent_id}`}>{agentName(n.agent_id)}</Link>
                </td>
                <td>
                  <Access number={n} />
                </td>
                <td>
                  {n.trunk_id && n.dispatch_rule_id ? (
                    <span className="badge green" title={`${n.trunk_id} · ${n.dispatch_rule_id}`}>
                      <span className="dot" />
                      Routed
                    </span>
                  ) : (
                    <span className="badge amber">
                      <span className="dot" />
                      Not applied
                    </span>
                  )}
                </td>
                <td className="muted">{formatDate(n.updated_at)}</td>
                <RowActions>
                  <button className="btn sm" onClick={() => setEditing(n)}>
                    Edit
                  </button>{" "}
                  <button className="btn sm danger" onClick={() => remove.ask(n)}>
                    Delete
                  </button>
                </RowActions>
              </tr>
            )}
          </QueryTable>
        </div>
        <OutboundCallCard agents={agents.data?.items ?? []} />
      </div>
      {editing && (
        <PhoneNumberForm
          number={editing === "new" ? undefined : editing}
          agents={agents.data?.items ?? []}
          onClose={() => setEditing(null)}
        />
      )}
      {remove.dialog}
    </>
  );
}

const TONE_CLASS: Record<SipStatusText["tone"], string> = { ok: "success", warning: "warning", neutral: "neutral" };

/** Whether livekit-sip is up and where callers reach it; polled, so it changes without a reload. */
function SipStatus() {
  const query = useTelephony();
  const status: SipStatusText = query.error
    ? { tone: "warning", text: `SIP service status could not be read: ${errorMessage(query.error)}` }
    : query.data
      ? sipStatusText(query.data)
      : { tone: "neutral", text: "Checking the SIP service…" };
  return (
    <div className={`alert ${TONE_CLASS[status.tone]}`} role="status" data-testid="sip-status">
      {status.text}
    </div>
  );
}

function Access({ number }: { number: PhoneNumber }) {
  const addresses = number.allowed_addresses;
  return (
    <div className="row" style={{ gap: 6 }}>
      {addresses.length ? (
        <span className="mono small" title={addresses.join(", ")}>
          {addresses.slice(0, 2).join(", ")}
          {addresses.length > 2 && ` +${addresses.length - 2}`}
        </span>
      ) : (
        <span className="muted">Any address</span>
      )}
      {number.auth && <span className="badge blue">Digest · {number.auth_username}</span>}
    </div>
  );
}
