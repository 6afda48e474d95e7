import { useState } from "react";

import { useCampaignAction, useCampaignRows, useCampaigns, useCreateCampaign } from "../api/campaigns";
import { useAgents } from "../api/queries";
import type { CampaignCreate } from "../api/types";
import { Empty, ErrorAlert, Field, PageHead, QueryTable, formatDate } from "../components/ui";

const RETRY_ON = ["busy", "no-answer", "voicemail"] as const;

export function CampaignsPage() {
  const campaigns = useCampaigns();
  const action = useCampaignAction();
  const [open, setOpen] = useState<string | null>(null);
  return (
    <>
      <PageHead title="Campaigns" sub="An agent phones a list of numbers, each with its own variables." />
      <NewCampaign />
      <div className="card">
        <ErrorAlert error={action.error} />
        <QueryTable
          query={campaigns}
          what="campaigns"
          empty={<Empty title="No campaigns yet" />}
          columns={["Name", "Status", "Progress", "Outcomes", "Created", ""]}
        >
          {(c) => (
            <tr key={c.id} data-testid="campaign-row">
              <td className="cell-title">
                <button className="btn ghost" onClick={() => setOpen(open === c.id ? null : c.id)}>
                  {c.name}
                </button>
              </td>
              <td>
                <span className="badge" data-testid="campaign-status">{c.status}</span>
              </td>
              <td data-testid="campaign-progress">
                {c.progress.done} / {c.progress.total} done · {c.progress.calling} calling · {c.progress.calls} calls
              </td>
              <td>
                {Object.entries(c.progress.outcomes)
                  .map(([k, v]) => `${k}: ${v}`)
                  .join(", ")}
              </td>
              <td>{formatDate(c.created_at)}</td>
              <td>
                {c.status === "draft" && <Action id={c.id} action="start" run={action.mutate} />}
                {c.status === "running" && <Action id={c.id} action="pause" run={action.mutate} />}
                {c.status === "paused" && <Action id={c.id} action="resume" run={action.mutate} />}
                {["draft", "running", "paused"].includes(c.status) && <Action id={c.id} action="cancel" run={action.mutate} />}
              </td>
            </tr>
          )}
        </QueryTable>
      </div>
      {open && <RowsCard id={open} />}
    </>
  );
}

function Action(props: { id: string; action: string; run: (v: { id: string; action: string }) => void }) {
  return (
    <button className="btn" onClick={() => props.run({ id: props.id, action: props.action })}>
      {props.action[0].toUpperCase() + props.action.slice(1)}
    </button>
  );
}

function RowsCard({ id }: { id: string }) {
  const rows = useCampaignRows(id);
  return (
    <div className="card">
      <h2>Rows</h2>
      <QueryTable
        query={rows}
        what="rows"
        empty={<Empty title="No rows" />}
        columns={["Line", "Number", "Variables", "Status", "Outcome", "Calls"]}
      >
        {(r) => (
          <tr key={r.id} data-testid="campaign-line">
            <td>{r.position}</td>
            <td>{r.number}</td>
            <td className="small">
              {Object.entries(r.variables)
                .map(([k, v]) => `${k}=${v}`)
                .join(", ")}
            </td>
            <td>{r.status}</td>
            <td>{r.outcome ?? "—"}</td>
            <td>{r.calls.map((c) => c.outcome ?? "…").join(" → ")}</td>
          </tr>
        )}
      </QueryTable>
    </div>
  );
}

function NewCampaign() {
  const agents = useAgents();
  const [form, setForm] = useState({
    name: "",
    agent_id: "",
    csv: "",
    concurrency: 2,
    window_start: "09:00",
    window_end: "20:00",
    timezone: "UTC",
    max_attempts: 2,
    retry_delay_s: 300,
    retry_on: ["busy", "no-answer"] as string[],
  });
  const create = useCreateCampaign();
  const set = (k: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    setForm((f) => ({ ...f, [k]: e.target.type === "number" ? Number(e.target.value) : e.target.value }));
  const onFile = async (e: React.ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    if (file) {
      const csv = await file.text();
      setForm((f) => ({ ...f, csv }));
    }
  };
  return (
    <form
      className="card"
      onSubmit={(e) => {
        e.preventDefault();
        create.mutate(
          { ...form, retry_on: form.retry_on as CampaignCreate["retry_on"] },
          { onSuccess: () => setForm((f) => ({ ...f, name: "", csv: "" })) },
        );
      }}
    >
      <h2>New campaign</h2>
      <ErrorAlert error={create.error} />
      <div className="filters">
        <Field label="Name" htmlFor="c-name" error={create.error} path="name">
          <input id="c-name" className="input" value={form.name} onChange={set("name")} required />
        </Field>
        <Field label="Agent" htmlFor="c-agent" error={create.error} path="agent_id">
          <select id="c-agent" className="select" value={form.agent_id} onChange={set("agent_id")} required>
            <option value="">Choose…</option>
            {agents.data?.items.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Numbers (CSV)" htmlFor="c-csv" hint="phone_number column (E.164), optional timezone; other columns fill {placeholders}">
          <input id="c-csv" type="file" accept=".csv,text/csv" onChange={onFile} />
        </Field>
        <Field label="Concurrent calls" htmlFor="c-conc" error={create.error} path="concurrency">
          <input id="c-conc" className="input" type="number" min={1} max={50} value={form.concurrency} onChange={set("concurrency")} />
        </Field>
        <Field label="Window from" htmlFor="c-ws" hint="callee's local time">
          <input id="c-ws" className="input" type="time" value={form.window_start} onChange={set("window_start")} />
        </Field>
        <Field label="to" htmlFor="c-we">
          <input id="c-we" className="input" type="time" value={form.window_end} onChange={set("window_end")} />
        </Field>
        <Field label="Default time zone" htmlFor="c-tz" error={create.error} path="timezone">
          <input id="c-tz" className="input" value={form.timezone} onChange={set("timezone")} />
        </Field>
        <Field label="Attempts per number" htmlFor="c-max">
          <input id="c-max" className="input" type="number" min={1} max={10} value={form.max_attempts} onChange={set("max_attempts")} />
        </Field>
        <Field label="Retry after (s)" htmlFor="c-delay">
          <input id="c-delay" className="input" type="number" min={0} value={form.retry_delay_s} onChange={set("retry_delay_s")} />
        </Field>
        <fieldset className="field">
          <legend>Retry on</legend>
          {RETRY_ON.map((r) => (
            <label key={r} className="small">
              <input
                type="checkbox"
                checked={form.retry_on.includes(r)}
                onChange={(e) =>
                  setForm((f) => ({ ...f, retry_on: e.target.checked ? [...f.retry_on, r] : f.retry_on.filter((x) => x !== r) }))
                }
              />{" "}
              {r}
            </label>
          ))}
        </fieldset>
      </div>
      <button className="btn primary" type="submit" disabled={!form.csv || create.isPending}>
        Start campaign
      </button>
    </form>
  );
}
