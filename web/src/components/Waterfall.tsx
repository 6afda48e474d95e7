// The per-turn latency waterfall: one row per question and answer, stages on a shared axis.

import type { Turn } from "../api/types";
import { STAGES, type StageKey, axis, formatSeconds, formatTick, waterfallRows } from "../lib/waterfall";

export function Waterfall({ turns }: { turns: Turn[] }) {
  const rows = waterfallRows(turns).filter((r) => r.segments.length || r.total !== null);
  if (!rows.length) {
    return <div className="empty small">Latency appears here after the first answered turn.</div>;
  }
  const { max, ticks } = axis(rows);
  const pct = (s: number) => `${(s / max) * 100}%`;
  return (
    <div className="waterfall" data-testid="waterfall">
      <div className="wf-legend">
        {(Object.keys(STAGES) as StageKey[]).map((k) => (
          <span key={k}>
            <i className={`wf-swatch st-${k}`} />
            {STAGES[k]}
          </span>
        ))}
        <span>
          <i className="wf-swatch" style={{ borderLeft: "2px dashed var(--text)", borderRadius: 0 }} />
          First audio
        </span>
      </div>
      {rows.map((row) => (
        <div className="wf-row" key={row.seq} data-testid="waterfall-row">
          <div className="wf-label">
            <span className="cell-title">Turn {row.seq}</span>
            <span className="t" title={row.user?.text ?? row.agent?.text}>
              {row.user ? `“${row.user.text}”` : "Greeting"}
            </span>
          </div>
          <div
            className="wf-track"
            style={{ backgroundSize: `${(ticks[1] ?? max) / max * 100}% 100%` }}
          >
            {row.segments.map((s, i) => (
              <div
                key={s.key}
                className={`wf-bar st-${s.key}`}
                title={`${s.label}: ${formatSeconds(s.duration)}`}
                style={{ left: pct(s.start), width: pct(s.duration), top: 1 + i * 6 }}
              />
            ))}
            {row.total !== null && <div className="wf-total" style={{ left: pct(row.total) }} />}
          </div>
          <div className="wf-value" title={row.measured ? "Measured end to end" : "Sum of stages"}>
            {formatSeconds(row.total)}
          </div>
        </div>
      ))}
      <div className="wf-axis">
        {ticks.map((t) => (
          <span key={t} style={{ left: pct(t) }}>
            {formatTick(t)}
          </span>
        ))}
      </div>
    </div>
  );
}

/** Stage figures of one turn as a compact line (a session's transcript). */
export function TurnFigures({ turn }: { turn: Turn }) {
  const m = turn.metrics;
  const parts: [string, number | null][] =
    turn.role === "user"
      ? [
          ["end of utterance", m.end_of_turn_delay],
          ["STT", m.transcription_delay],
        ]
      : [
          ["retrieval", m.retrieval],
          ["LLM", m.llm_ttft],
          ["TTS", m.tts_ttfb],
          ["end to end", m.e2e_latency],
        ];
  const shown = parts.filter(([, v]) => v !== null && v !== undefined);
  if (!shown.length) return null;
  return (
    <div className="small muted">
      {shown.map(([k, v]) => `${k} ${formatSeconds(v)}`).join(" · ")}
    </div>
  );
}
