import { Fragment, useRef, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";

import { download } from "../api/client";
import { type SessionFilters, sessionParams, useAgent, useAgents, useRecording, useSession, useSessions } from "../api/queries";
import type { SessionWithTurns } from "../api/types";
import { type PlayerHandle, RecordingPlayer } from "../components/RecordingPlayer";
import { TurnFigures, Waterfall } from "../components/Waterfall";
import { Empty, ErrorAlert, Loading, PageHead, QueryTable, StatusBadge, formatDate, formatDuration } from "../components/ui";

const SINCE: Record<string, number | null> = { any: null, hour: 3600, day: 86400, week: 7 * 86400 };

export function SessionsPage() {
  const [filters, setFilters] = useState({
    agent_id: "",
    channel: "",
    status: "",
    since: "any",
    analysis_status: "",
    analysis_field: "",
    analysis_value: "",
  });
  const [exportError, setExportError] = useState<unknown>(null);
  const agents = useAgents();
  const since = SINCE[filters.since];
  const query: SessionFilters = {
    agent_id: filters.agent_id,
    channel: filters.channel,
    status: filters.status,
    // Rounded to the minute so the query key (and the cache) stays put between renders.
    since: since ? new Date(Math.floor(Date.now() / 60000) * 60000 - since * 1000).toISOString() : "",
    analysis_status: filters.analysis_status,
    analysis_field: filters.analysis_field.trim(),
    analysis_value: filters.analysis_field.trim() ? filters.analysis_value.trim() : "",
  };
  const sessions = useSessions(query);
  const navigate = useNavigate();
  const agentName = (id: string) => agents.data?.items.find((a) => a.id === id)?.name ?? "Deleted agent";
  const set = (k: keyof typeof filters) => (e: React.ChangeEvent<HTMLSelectElement | HTMLInputElement>) =>
    setFilters((f) => ({ ...f, [k]: e.target.value }));
  const exportCsv = () => {
    setExportError(null);
    download(`/api/sessions/export.csv?${sessionParams(query)}`, "sessions.csv").catch(setExportError);
  };

  return (
    <>
      <PageHead title="Sessions" sub="Every web and phone session, with its transcript and latency." />
      <div className="card">
        <div className="filters">
          <div className="field">
            <label htmlFor="f-agent">Agent</label>
            <select id="f-agent" className="select" value={filters.agent_id} onChange={set("agent_id")}>
              <option value="">All agents</option>
              {agents.data?.items.map((a) => (
                <option key={a.id} value={a.id}>
                  {a.name}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-channel">Channel</label>
            <select id="f-channel" className="select" value={filters.channel} onChange={set("channel")}>
              <option value="">Web and phone</option>
              <option value="web">Web</option>
              <option value="phone">Phone</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-status">Outcome</label>
            <select id="f-status" className="select" value={filters.status} onChange={set("status")}>
              <option value="">Any</option>
              <option value="active">Active</option>
              <option value="completed">Completed</option>
              <option value="failed">Failed</option>
              <option value="abandoned">Caller never joined</option>
              <option value="created">Not joined</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-since">Started</label>
            <select id="f-since" className="select" value={filters.since} onChange={set("since")}>
              <option value="any">Any time</option>
              <option value="hour">Last hour</option>
              <option value="day">Last 24 hours</option>
              <option value="week">Last 7 days</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-analysis">Analysis</label>
            <select id="f-analysis" className="select" value={filters.analysis_status} onChange={set("analysis_status")}>
              <option value="">Any</option>
              <option value="succeeded">Done</option>
              <option value="failed">Failed</option>
              <option value="pending">Waiting</option>
            </select>
          </div>
          <div className="field">
            <label htmlFor="f-field">Field</label>
            <input id="f-field" className="input" placeholder="e.g. resolved" value={filters.analysis_field} onChange={set("analysis_field")} />
          </div>
          <div className="field">
            <label htmlFor="f-value">Value</label>
            <input id="f-value" className="input" placeholder="true, 42 or text" disabled={!filters.analysis_field.trim()} value={filters.analysis_value} onChange={set("analysis_value")} />
          </div>
          <span className="spacer" />
          {sessions.data && <span className="muted small">{sessions.data.count} {sessions.data.count === 1 ? "session" : "sessions"}</span>}
          <button className="btn sm" onClick={exportCsv}>
            Export CSV
          </button>
        </div>
        <ErrorAlert error={exportError} />
        <QueryTable
          query={sessions}
          what="sessions"
          empty={
            <Empty title="No sessions match">
              <p>Start one from the Talk page.</p>
            </Empty>
          }
          columns={["Started", "Agent", "Channel", "Outcome", "Duration"]}
        >
          {(s) => (
            <tr key={s.id} className="clickable" data-testid="session-row" onClick={() => navigate(`/sessions/${s.id}`)}>
              <td>{formatDate(s.created_at)}</td>
              <td className="cell-title">{agentName(s.agent_id)}</td>
              <td>
                <span className="badge">{s.channel === "phone" ? "Phone" : "Web"}</span>
              </td>
              <td>
                <StatusBadge status={s.status} />
              </td>
              <td>{formatDuration(s.started_at, s.ended_at)}</td>
            </tr>
          )}
        </QueryTable>
      </div>
    </>
  );
}

export function SessionDetailPage() {
  const { id } = useParams();
  const session = useSession(id, "until-ended");
  const agent = useAgent(session.data?.agent_id);
  const recording = useRecording(id, session.data?.ended_at);
  const player = useRef<PlayerHandle>(null);
  const [playingTurn, setPlayingTurn] = useState<number | null>(null);
  const crumbs = <Link to="/sessions">Sessions</Link>;
  if (session.error) {
    return (
      <>
        <PageHead title="Session" crumbs={crumbs} />
        <ErrorAlert error={session.error} />
      </>
    );
  }
  const s = session.data;
  return (
    <>
      <PageHead
        title={s ? `Session with ${agent.data?.name ?? "agent"}` : "Session"}
        sub={s ? formatDate(s.created_at) : undefined}
        crumbs={crumbs}
        actions={s && <StatusBadge status={s.status} />}
      />
      {!s ? (
        <div className="card">
          <Loading what="the session" />
        </div>
      ) : (
        <div className="split">
          <div className="stack">
            {recording.data && (
              <RecordingPlayer ref={player} recording={recording.data} turns={s.turns} onActiveTurn={setPlayingTurn} />
            )}
            <div className="card">
              <div className="card-head">
                <h2>Transcript</h2>
                <span className="muted small">{s.turns.length} turns</span>
              </div>
              <div className="transcript" style={{ maxHeight: "none" }} data-testid="session-transcript">
                {!s.turns.length && <div className="muted small">Nothing was said in this session.</div>}
                {s.turns.map((t) => (
                  <div
                    key={t.id}
                    className={`bubble ${t.role === "user" ? "user" : "agent"}${recording.data && t.started_at ? " seekable" : ""}${playingTurn === t.id ? " playing" : ""}`}
                    data-speaker={t.role}
                    aria-current={playingTurn === t.id ? "true" : undefined}
                    {...(recording.data && t.started_at
                      ? {
                          role: "button",
                          tabIndex: 0,
                          title: "Play the recording from this turn",
                          onClick: () => player.current?.playTurn(t.id),
                          onKeyDown: (e: React.KeyboardEvent) => {
                            if (e.key === "Enter" || e.key === " ") {
                              e.preventDefault();
                              player.current?.playTurn(t.id);
                            }
                          },
                        }
                      : {})}
                  >
                    <div className="who">
                      {t.role === "user" ? (s.channel === "phone" ? "Caller" : "User") : "Agent"}
                      {t.interrupted && " · interrupted"}
                    </div>
                    {t.text}
                    <div style={{ opacity: 0.85 }}>
                      <TurnFigures turn={t} />
                    </div>
                  </div>
                ))}
              </div>
            </div>
          </div>
          <div className="stack">
            {s.analysis && <AnalysisCard session={s} />}
            <div className="card">
              <div className="card-head">
                <h2>Latency per turn</h2>
              </div>
              <Waterfall turns={s.turns} />
            </div>
            <div className="card card-body">
              <dl className="kv">
                <dt>Channel</dt>
                <dd>{s.channel === "phone" ? "Phone" : "Web"}</dd>
                <dt>Started</dt>
                <dd>{formatDate(s.started_at)}</dd>
                <dt>Ended</dt>
                <dd>{formatDate(s.ended_at)}</dd>
                <dt>Duration</dt>
                <dd>{formatDuration(s.started_at, s.ended_at)}</dd>
                <dt>End of turn</dt>
                <dd>{s.turn_detection ?? "—"}</dd>
                <dt>Room</dt>
                <dd className="mono">{s.room}</dd>
                <dt>Worker</dt>
                <dd className="mono">{s.worker_id ?? "—"}</dd>
                {s.failure_reason && (
                  <>
                    <dt>Failure</dt>
                    <dd style={{ color: "var(--danger)" }}>{s.failure_reason}</dd>
                  </>
                )}
              </dl>
            </div>
          </div>
        </div>
      )}
    </>
  );
}

const ANALYSIS_STATUS: Record<string, string> = {
  pending: "Waiting",
  running: "Analysing…",
  succeeded: "Done",
  failed: "Failed",
};

function AnalysisCard({ session }: { session: SessionWithTurns }) {
  const a = session.analysis!;
  const color = a.status === "succeeded" ? "green" : a.status === "failed" ? "red" : "amber";
  return (
    <div className="card card-body" data-testid="session-analysis" data-status={a.status}>
      <div className="card-head" style={{ padding: 0, marginBottom: 8 }}>
        <h2>Analysis</h2>
        <span className={`badge ${color}`}>
          <span className="dot" />
          {ANALYSIS_STATUS[a.status] ?? a.status}
        </span>
      </div>
      {a.status === "failed" && (
        <div className="alert error" role="alert">
          {a.error}
        </div>
      )}
      {a.summary && <p style={{ marginTop: 0 }}>{a.summary}</p>}
      {a.data && (
        <dl className="kv">
          {Object.entries(a.data).map(([name, value]) => (
            <Fragment key={name}>
              <dt className="mono">{name}</dt>
              <dd data-field={name}>{value === null || value === undefined ? "—" : String(value)}</dd>
            </Fragment>
          ))}
        </dl>
      )}
    </div>
  );
}
