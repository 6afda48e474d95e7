// Per-turn latency as a waterfall: where the time went between the caller's last word and the
// agent's first sound. livekit-agents reports end-of-turn and STT delays on the user's message
// and LLM/TTS figures on the agent's reply, all measured from the end of the user's speech.

import type { Turn, TurnMetrics } from "../api/types";

export type StageKey = "eou" | "stt" | "retrieval" | "llm" | "tts";

export const STAGES: Record<StageKey, string> = {
  eou: "End of utterance",
  stt: "Transcription",
  retrieval: "Retrieval",
  llm: "LLM first token",
  tts: "TTS first audio",
};

export interface Segment {
  key: StageKey;
  label: string;
  /** Seconds after the user stopped speaking. */
  start: number;
  duration: number;
}

export interface Exchange {
  /** The user turn's sequence number; the agent's when it spoke unprompted (a greeting). */
  seq: number;
  user: Turn | null;
  agent: Turn | null;
}

export interface WaterfallRow extends Exchange {
  segments: Segment[];
  /** Seconds from end of speech to the agent's first audio: measured, else the stages' sum. */
  total: number | null;
  measured: boolean;
}

/** Pair each user turn with the agent reply that follows it (greetings stand alone). */
export function exchanges(turns: Turn[]): Exchange[] {
  const sorted = [...turns].sort((a, b) => a.seq - b.seq);
  const out: Exchange[] = [];
  let open: Exchange | null = null;
  for (const turn of sorted) {
    if (turn.role === "user") {
      open = { seq: turn.seq, user: turn, agent: null };
      out.push(open);
    } else if (open && !open.agent) {
      open.agent = turn;
    } else {
      open = null;
      out.push({ seq: turn.seq, user: null, agent: turn });
    }
  }
  return out;
}

function value(v: number | null | undefined): number | null {
  return typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : null;
}

/** Lay a turn's stages out in time. Stages that were not reported are left out. */
export function segments(user: Partial<TurnMetrics>, agent: Partial<TurnMetrics>): Segment[] {
  const eou = value(user.end_of_turn_delay ?? agent.end_of_turn_delay);
  const stt = value(user.transcription_delay ?? agent.transcription_delay);
  const retrieval = value(agent.retrieval ?? user.retrieval);
  const llm = value(agent.llm_ttft);
  const tts = value(agent.tts_ttfb);
  const out: Segment[] = [];
  const push = (key: StageKey, start: number, duration: number) =>
    out.push({ key, label: STAGES[key], start, duration });
  // Transcription and end-of-turn detection both run from the end of speech; the LLM starts
  // once the turn is decided (and any retrieval is done), the TTS on its first token.
  if (eou !== null) push("eou", 0, eou);
  if (stt !== null) push("stt", 0, stt);
  let cursor = Math.max(eou ?? 0, stt ?? 0);
  if (retrieval !== null) {
    push("retrieval", cursor, retrieval);
    cursor += retrieval;
  }
  if (llm !== null) {
    push("llm", cursor, llm);
    cursor += llm;
  }
  if (tts !== null) push("tts", cursor, tts);
  return out;
}

export function waterfallRows(turns: Turn[]): WaterfallRow[] {
  return exchanges(turns).map((ex) => {
    const segs = segments(ex.user?.metrics ?? {}, ex.agent?.metrics ?? {});
    const e2e = value(ex.agent?.metrics.e2e_latency);
    const end = segs.length ? Math.max(...segs.map((s) => s.start + s.duration)) : null;
    return { ...ex, segments: segs, total: e2e ?? end, measured: e2e !== null };
  });
}

/** A round axis maximum (seconds) covering every row, and its tick marks. */
export function axis(rows: WaterfallRow[], minimum = 0.5): { max: number; ticks: number[] } {
  const longest = Math.max(
    minimum,
    ...rows.flatMap((r) => [r.total ?? 0, ...r.segments.map((s) => s.start + s.duration)]),
  );
  const steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 30, 60];
  const step = steps.find((s) => longest / s <= 5) ?? Math.ceil(longest / 5);
  const max = Math.ceil(longest / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let t = 0; t <= max + 1e-9; t += step) ticks.push(Math.round(t * 1000) / 1000);
  return { max, ticks };
}

/** `0.4123` → `412 ms`, `1.5` → `1.50 s`. */
export function formatSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return "—";
  return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

/** Axis labels: `0`, `0.5 s`, `2 s`. */
export function formatTick(s: number): string {
  return s === 0 ? "0" : `${Number(s.toFixed(2))} s`;
}
