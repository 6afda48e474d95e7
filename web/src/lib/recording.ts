// Where each turn of a call sits in its recording, and which turn is playing.

import type { Turn } from "../api/types";

export interface TurnSpan {
  id: number;
  start: number;
  end: number;
}

/** Seconds into the recording at which each turn starts and ends (turns without times skipped). */
export function turnSpans(turns: Turn[], recordingStartedAt: string): TurnSpan[] {
  const t0 = Date.parse(recordingStartedAt);
  const spans: TurnSpan[] = [];
  for (const t of turns) {
    if (!t.started_at) continue;
    const start = Math.max(0, (Date.parse(t.started_at) - t0) / 1000);
    const end = t.ended_at ? Math.max(start, (Date.parse(t.ended_at) - t0) / 1000) : start;
    spans.push({ id: t.id, start, end });
  }
  return spans;
}

/** The turn being spoken at `time`: the last one started by then and not over, else none. */
export function activeTurn(spans: TurnSpan[], time: number): number | null {
  let found: number | null = null;
  for (const s of spans) {
    if (s.start <= time && time <= s.end + 0.25) found = s.id;
  }
  return found;
}

/** `m:ss` for a position in the recording. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
