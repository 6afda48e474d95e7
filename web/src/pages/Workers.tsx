import { useEffect, useState } from "react";

import type { Worker, Workers } from "../api/types";
import { useWorkers } from "../api/workers";
import { Empty, PageHead, QueryTable } from "../components/ui";
import { formatLatency, heartbeatAge, loadLevel, loadPercent, workerState } from "../lib/workers";

export function WorkersPage() {
  const workers = useWorkers();
  const now = useNow(1000);
  return (
    <>
      <PageHead
        title="Workers"
        sub="The processes that run your agents' sessions, as their heartbeats report them. Refreshed every few seconds."
      />
      <div className="stack">
        {workers.data && workers.data.count > 0 && <Summary pool={workers.data} />}
        <div className="card">
          {/* Polled: a failed refresh keeps the last rows on screen, with the error under them. */}
          <QueryTable
            query={workers}
            what="workers"
            keepStaleOnError
            empty={
              <Empty title="No workers running">
                <p>
                  Sessions need at least one worker. Start one next to the control plane with{" "}
                  <code className="mono">stimm worker</code>; it appears here within a few seconds.
                </p>
              </Empty>
            }
            columns={["Worker", "State", "Load", "Sessions", "p95 latency", "Last heartbeat"]}
          >
            {(w) => <WorkerRow key={w.worker_id} worker={w} now={now} />}
          </QueryTable>
        </div>
      </div>
    </>
  );
}

function Summary({ pool }: { pool: Workers }) {
  return (
    <div className="grid-3" data-testid="workers-summary">
      <div className="card stat">
        <div className="label">Workers</div>
        <div className="value">{pool.count}</div>
      </div>
      <div className="card stat">
        <div className="label">Sessions in use</div>
        <div className="value">
          {pool.sessions} <span className="of">/ {pool.capacity} slots</span>
        </div>
      </div>
      <div className="card stat">
        <div className="label">Free slots</div>
        <div className="value">{Math.max(0, pool.capacity - pool.sessions)}</div>
      </div>
    </div>
  );
}

const STATE_BADGE = { ready: "green", full: "amber", draining: "amber" } as const;

function WorkerRow({ worker: w, now }: { worker: Worker; now: number }) {
  const state = workerState(w);
  const pct = loadPercent(w.load);
  return (
    <tr data-testid="worker-row">
      <td>
        <div className="cell-title mono">{w.worker_id}</div>
        <div className="cell-sub">
          {w.hostname || "unknown host"}
          {w.pid != null && ` · pid ${w.pid}`}
        </div>
      </td>
      <td>
        <span className={`badge ${STATE_BADGE[state]}`} title={state === "full" ? "At its load threshold: LiveKit sends it no new job" : undefined}>
          <span className="dot" />
          {state[0].toUpperCase() + state.slice(1)}
        </span>
      </td>
      <td>
        <div className="load-cell" title={`Takes no new session at ${loadPercent(w.threshold)}%`}>
          <div
            className={`progress ${loadLevel(w.load, w.threshold)}`}
            role="progressbar"
            aria-label="Load"
            aria-valuemin={0}
            aria-valuemax={100}
            aria-valuenow={pct}
          >
            <div style={{ width: `${pct}%` }} />
          </div>
          <span className="num small">{pct}%</span>
        </div>
      </td>
      <td className="mono" data-testid="worker-sessions">
        {w.active_jobs} / {w.max_sessions}
      </td>
      <td className="mono">{formatLatency(w.p95_latency_s)}</td>
      <td className="muted">{heartbeatAge(w.last_seen_at, now)}</td>
    </tr>
  );
}

/** The current time, ticking every `ms`, so ages count up between polls. */
function useNow(ms: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
