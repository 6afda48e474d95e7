import { useState } from "react";
import { Link } from "react-router";

import { useAgents } from "../api/queries";
import { useDeletePhoneNumber, usePhoneNumbers } from "../api/phoneNumbers";
import { useTelephony } from "../api/telephony";
import type { PhoneNumber } from "../api/types";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { Empty, PageHead, QueryList, formatDate } from "../components/ui";
import { errorMessage } from "../lib/errors";
import { type SipStatusText, dialUri, sipStatusText } from "../lib/telephony";
import { OutboundCallCard } from "./PhoneNumbersCall";
import { PhoneNumberForm } from "./PhoneNumbersForm";

export function PhoneNumbersPage() {
  const numbers = usePhoneNumbers();
  const agents = useAgents();
  const dialTemplate = useTelephony().data?.dial_uri_template;
  const [editing, setEditing] = useState<PhoneNumber | "new" | null>(null);
  const [deleting, setDeleting] = useState<PhoneNumber | null>(null);
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
          <QueryList
            query={numbers}
            what="phone numbers"
            empty={
              <Empty title="No phone numbers yet">
                <p>Add the number your SIP provider routes to Stimm, and pick the agent that answers it.</p>
              </Empty>
            }
          >
            {(items) => (
              <table className="table">
                <thead>
                  <tr>
                    <th>Number</th>
                    <th>Answered by</th>
                    <th>Who may call</th>
                    <th>LiveKit</th>
                    <th>Updated</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {items.map((n) => (
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
                      <td className="actions" onClick={(e) => e.stopPropagation()}>
                        <button className="btn sm" onClick={() => setEditing(n)}>
                          Edit
                        </button>{" "}
                        <button className="btn sm danger" onClick={() => setDeleting(n)}>
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
        <OutboundCallCard agents={agents.data?.items ?? []} />
      </div>
      {editing && (
        <PhoneNumberForm
          number={editing === "new" ? undefined : editing}
          agents={agents.data?.items ?? []}
          onClose={() => setEditing(null)}
        />
      )}
      {deleting && <DeletePhoneNumber number={deleting} onClose={() => setDeleting(null)} />}
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

function DeletePhoneNumber({ number, onClose }: { number: PhoneNumber; onClose: () => void }) {
  const del = useDeletePhoneNumber();
  return (
    <ConfirmDialog
      title={`Delete ${number.number}?`}
      confirm="Delete number"
      onConfirm={() => del.mutate(number.id, { onSuccess: onClose })}
      onCancel={onClose}
      pending={del.isPending}
      error={del.error}
    >
      Calls to this number are refused from now on; its trunk and dispatch rule are removed from
      LiveKit. Calls in progress keep running.
    </ConfirmDialog>
  );
}
