import { type FormEvent, useState } from "react";
import { Link } from "react-router";

import { usePlaceCall } from "../api/phoneNumbers";
import type { Agent } from "../api/types";
import { ErrorAlert, Field } from "../components/ui";
import { unplacedMessages } from "../lib/errors";
import { allPlaced, normalizeNumber, numberHint, placeErrors } from "../lib/phone";

const SHOWN = ["agent_id", "to"];

// Agent, number and the button on one line; the button sits level with the inputs, under the labels.
const ROW = { display: "grid", gridTemplateColumns: "minmax(0, 1fr) minmax(0, 1fr) auto", gap: 16, alignItems: "start" } as const;
const BUTTON = { marginTop: 25.5, height: 36 } as const;

/** An agent phones a number: the API returns once the callee answered. */
export function OutboundCallCard({ agents }: { agents: Agent[] }) {
  const call = usePlaceCall();
  const [agentId, setAgentId] = useState("");
  const [to, setTo] = useState("");
  const err = placeErrors(call.error, "to");
  const chosen = agentId || (agents.length === 1 ? agents[0]!.id : "");

  function submit(e: FormEvent) {
    e.preventDefault();
    call.mutate({ agent_id: chosen, to: normalizeNumber(to) });
  }

  return (
    <section className="card" aria-label="Call a phone">
      <div className="card-head">
        <div>
          <h2>Call a phone</h2>
          <p>An agent dials out through your SIP provider and greets whoever answers.</p>
        </div>
      </div>
      <form className="card-body stack" onSubmit={submit} noValidate>
        <div style={ROW}>
          <Field label="Agent" htmlFor="call-agent" path="agent_id" error={err}>
            <select id="call-agent" className="select" value={chosen} onChange={(e) => setAgentId(e.target.value)}>
              <option value="">Choose an agent…</option>
              {agents.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Number to call" htmlFor="call-to" path="to" error={err} hint={numberHint(to) ?? "International form, e.g. +15550123"}>
            <input id="call-to" className="input mono" value={to} placeholder="+15550123" onChange={(e) => setTo(e.target.value)} />
          </Field>
          <button type="submit" className="btn primary" style={BUTTON} disabled={call.isPending}>
            {call.isPending ? (
              <>
                <span className="spinner" /> Calling…
              </>
            ) : (
              "Call"
            )}
          </button>
        </div>
        {call.isPending && <p className="muted small" style={{ margin: 0 }}>Ringing — this waits until the call is answered.</p>}
        {call.error != null && !allPlaced(err, SHOWN) && <ErrorAlert error={err} extra={unplacedMessages(err, SHOWN)} />}
        {call.data && !call.isPending && (
          <div className="alert info" role="status">
            {call.data.callee} answered; the agent is on the line.{" "}
            <Link to={`/sessions/${call.data.session_id}`}>Open its session</Link>
          </div>
        )}
      </form>
    </section>
  );
}
