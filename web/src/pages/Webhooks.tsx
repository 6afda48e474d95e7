import { useState } from "react";

import type { WebhookEndpoint, WebhookEndpointCreated, WebhookEvent } from "../api/types";
import { useCreateWebhook, useDeleteWebhook, useDeliveries, useResend, useUpdateWebhook, useWebhooks } from "../api/webhooks";
import { useConfirm } from "../components/ConfirmDialog";
import { FormModal } from "../components/FormModal";
import { Empty, ErrorAlert, Field, Modal, PageHead, QueryTable, RowActions, formatDate } from "../components/ui";

const EVENTS: { name: WebhookEvent; what: string }[] = [
  { name: "session.started", what: "a caller is connected to the agent" },
  { name: "session.ended", what: "a call ended: outcome, transcript, analysis" },
  { name: "analysis.completed", what: "a call's analysis is ready" },
];

/** Webhook endpoints: where call events are posted, signed, and each endpoint's delivery log. */
export function WebhooksPage() {
  const endpoints = useWebhooks();
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<WebhookEndpointCreated | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const remove = useConfirm(useDeleteWebhook(), (endpoint: WebhookEndpoint) => ({
    title: "Delete this endpoint?",
    confirm: "Delete endpoint",
    text: `${endpoint.url} hears no more events; its secret and delivery log are deleted.`,
    variables: endpoint.id,
  }));
  const update = useUpdateWebhook();
  const shown = selected ?? endpoints.data?.items[0]?.id;

  return (
    <>
      <PageHead
        title="Webhooks"
        sub="Your servers hear about sessions: each event is posted as JSON, signed with the endpoint's secret, and retried until it is accepted."
        actions={
          <button className="btn primary" onClick={() => setCreating(true)}>
            New endpoint
          </button>
        }
      />
      <div className="card">
        <QueryTable
          query={endpoints}
          what="webhook endpoints"
          empty={
            <Empty title="No webhook endpoints yet">
              <p>Add the URL of a server that should hear when sessions start and end.</p>
            </Empty>
          }
          columns={["URL", "Events", "Created", ""]}
        >
          {(w) => (
            <tr key={w.id} data-testid="webhook-row" className={w.id === shown ? "selected clickable" : "clickable"} onClick={() => setSelected(w.id)}>
              <td>
                <div className="cell-title mono">{w.url}</div>
                {w.description && <div className="cell-sub">{w.description}</div>}
              </td>
              <td className="mono small">{w.events.join(", ")}</td>
              <td className="muted">{formatDate(w.created_at)}</td>
              <RowActions>
                <label className="check" style={{ display: "inline-flex" }}>
                  <input type="checkbox" checked={w.enabled} onChange={(e) => update.mutate({ id: w.id, enabled: e.target.checked })} />
                  Enabled
                </label>{" "}
                <button className="btn sm danger" onClick={() => remove.ask(w)}>
                  Delete
                </button>
              </RowActions>
            </tr>
          )}
        </QueryTable>
      </div>
      {shown && <DeliveryLog endpointId={shown} />}
      {creating && (
        <CreateEndpoint
          onClose={() => setCreating(false)}
          onCreated={(w) => {
            setCreating(false);
            setCreated(w);
            setSelected(w.id);
          }}
        />
      )}
      {created && <SecretShown endpoint={created} onClose={() => setCreated(null)} />}
      {remove.dialog}
    </>
  );
}

function DeliveryLog({ endpointId }: { endpointId: string }) {
  const deliveries = useDeliveries(endpointId);
  const resend = useResend(endpointId);
  return (
    <div className="card" style={{ marginTop: 16 }}>
      <div className="card-head">
        <h2>Delivery log</h2>
        {deliveries.data && <span className="muted small">{deliveries.data.count} deliveries</span>}
      </div>
      <ErrorAlert error={resend.error} />
      <QueryTable
        query={deliveries}
        what="deliveries"
        empty={
          <Empty title="Nothing sent yet">
            <p>Events appear here as sessions start and end.</p>
          </Empty>
        }
        columns={["Queued", "Event", "Status", "Attempts", "Last answer", ""]}
      >
        {(d) => (
          <tr key={d.id} data-testid="delivery-row" data-status={d.status}>
            <td className="muted">{formatDate(d.created_at)}</td>
            <td className="mono small">
              {d.event}
              {d.resent_from && <div className="cell-sub">resent</div>}
            </td>
            <td>
              <DeliveryBadge status={d.status} />
              {d.status === "pending" && d.next_attempt_at && d.attempts > 0 && (
                <div className="cell-sub">next try {formatDate(d.next_attempt_at)}</div>
              )}
            </td>
            <td>{d.attempts}</td>
            <td className="small">
              {d.last_status_code != null && <span className="mono">HTTP {d.last_status_code}</span>}
              {d.last_error && d.status !== "succeeded" && <div className="cell-sub">{d.last_error}</div>}
            </td>
            <td className="actions">
              <button className="btn sm" disabled={resend.isPending} onClick={() => resend.mutate(d.id)}>
                Resend
              </button>
            </td>
          </tr>
        )}
      </QueryTable>
    </div>
  );
}

const BADGE: Record<string, [string, string]> = {
  pending: ["amber", "Pending"],
  running: ["blue", "Sending"],
  succeeded: ["green", "Delivered"],
  failed: ["red", "Failed"],
};

function DeliveryBadge({ status }: { status: string }) {
  const [color, label] = BADGE[status] ?? ["", status];
  return (
    <span className={`badge ${color}`}>
      <span className="dot" />
      {label}
    </span>
  );
}

const SHOWN = ["url", "events", "description"];

function CreateEndpoint(props: { onClose: () => void; onCreated: (w: WebhookEndpointCreated) => void }) {
  const create = useCreateWebhook();
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<WebhookEvent[]>(["session.ended"]);
  const err = create.error;
  const toggle = (name: WebhookEvent) =>
    setEvents((list) => (list.includes(name) ? list.filter((x) => x !== name) : [...list, name]));

  return (
    <FormModal
      title="New webhook endpoint"
      submit="Add endpoint"
      onSubmit={() =>
        create.mutate({ url: url.trim(), events, description: description.trim() || null }, { onSuccess: props.onCreated })
      }
      onClose={props.onClose}
      pending={create.isPending}
      error={err}
      shown={SHOWN}
    >
      <Field label="URL" htmlFor="wh-url" path="url" error={err} hint="Where events are posted (https://…)">
        <input id="wh-url" className="input mono" value={url} autoFocus onChange={(e) => setUrl(e.target.value)} />
      </Field>
      <Field label="Events" path="events" prefix error={err}>
        <div className="stack" style={{ gap: 4 }}>
          {EVENTS.map((ev) => (
            <label key={ev.name} className="row" style={{ gap: 8, fontWeight: 400 }}>
              <input type="checkbox" checked={events.includes(ev.name)} onChange={() => toggle(ev.name)} />
              <span className="mono">{ev.name}</span> <span className="muted small">{ev.what}</span>
            </label>
          ))}
        </div>
      </Field>
      <Field label="Description" htmlFor="wh-description" path="description" error={err}>
        <input id="wh-description" className="input" value={description} onChange={(e) => setDescription(e.target.value)} />
      </Field>
    </FormModal>
  );
}

function SecretShown({ endpoint, onClose }: { endpoint: WebhookEndpointCreated; onClose: () => void }) {
  return (
    <Modal
      title="Endpoint added"
      onClose={onClose}
      footer={
        <button className="btn primary" onClick={onClose}>
          Done
        </button>
      }
    >
      <p style={{ marginTop: 0 }}>Its signing secret is shown this once; keep it where your server can read it.</p>
      <pre className="mono copyable" data-testid="webhook-secret">
        {endpoint.secret}
      </pre>
      <p className="small muted" style={{ marginBottom: 0 }}>
        Each request carries <code>Stimm-Signature: t=…,v1=…</code>: the HMAC-SHA256, keyed with this secret, of the
        timestamp, a dot and the raw body. Refuse timestamps older than five minutes, and drop repeated{" "}
        <code>Stimm-Event-Id</code>s.
      </p>
    </Modal>
  );
}
