import { describe, expect, it } from "vitest";

import type { Turn, TurnMetrics } from "../api/types";
import { axis, exchanges, formatSeconds, formatTick, segments, waterfallRows } from "./waterfall";

const none: TurnMetrics = {
  end_of_turn_delay: null,
  transcription_delay: null,
  llm_ttft: null,
  tts_ttfb: null,
  e2e_latency: null,
  retrieval: null,
};

function turn(seq: number, role: Turn["role"], metrics: Partial<TurnMetrics> = {}): Turn {
  return {
    id: seq,
    session_id: "s",
    seq,
    role,
    text: `${role} ${seq}`,
    interrupted: false,
    started_at: null,
    ended_at: null,
    metrics: { ...none, ...metrics },
    created_at: "2025-01-01T00:00:00Z",
  };
}

describe("exchanges", () => {
  it("pairs each question with the reply after it and keeps a greeting on its own", () => {
    const ex = exchanges([turn(3, "assistant"), turn(1, "assistant"), turn(2, "user")]);
    expect(ex.map((e) => [e.seq, e.user?.seq ?? null, e.agent?.seq ?? null])).toEqual([
      [1, null, 1],
      [2, 2, 3],
    ]);
  });

  it("keeps a question still waiting for its answer", () => {
    const ex = exchanges([turn(1, "assistant"), turn(2, "user")]);
    expect(ex[1]).toMatchObject({ seq: 2, agent: null });
  });

  it("does not attach a second agent message to an answered question", () => {
    const ex = exchanges([turn(1, "user"), turn(2, "assistant"), turn(3, "assistant")]);
    expect(ex).toHaveLength(2);
    expect(ex[1]).toMatchObject({ seq: 3, user: null });
  });
});

describe("segments", () => {
  it("starts the LLM when the turn is decided and the TTS on the first token", () => {
    const segs = segments(
      { end_of_turn_delay: 0.6, transcription_delay: 0.3 },
      { llm_ttft: 0.4, tts_ttfb: 0.2 },
    );
    const at = Object.fromEntries(segs.map((s) => [s.key, [s.start, s.duration]]));
    expect(at.eou).toEqual([0, 0.6]);
    expect(at.stt).toEqual([0, 0.3]);
    expect(at.llm[0]).toBeCloseTo(0.6);
    expect(at.tts[0]).toBeCloseTo(1.0);
  });

  it("puts retrieval between the decision and the LLM", () => {
    const segs = segments({ end_of_turn_delay: 0.5 }, { retrieval: 0.1, llm_ttft: 0.3 });
    expect(segs.find((s) => s.key === "llm")?.start).toBeCloseTo(0.6);
  });

  it("waits for a transcript that comes after the end-of-turn decision", () => {
    const segs = segments({ end_of_turn_delay: 0.2, transcription_delay: 0.5 }, { llm_ttft: 1 });
    expect(segs.find((s) => s.key === "llm")?.start).toBeCloseTo(0.5);
  });

  it("leaves out stages that were not reported, and nonsense values", () => {
    const segs = segments({ end_of_turn_delay: -1 }, { tts_ttfb: 0.25, llm_ttft: Number.NaN });
    expect(segs).toEqual([{ key: "tts", label: "TTS first audio", start: 0, duration: 0.25 }]);
  });
});

describe("waterfallRows", () => {
  it("prefers the measured end-to-end latency over the stages' sum", () => {
    const rows = waterfallRows([
      turn(1, "user", { end_of_turn_delay: 0.5 }),
      turn(2, "assistant", { llm_ttft: 0.5, tts_ttfb: 0.5, e2e_latency: 1.2 }),
    ]);
    expect(rows[0]).toMatchObject({ total: 1.2, measured: true });
  });

  it("falls back to where the last stage ends", () => {
    const rows = waterfallRows([
      turn(1, "user", { end_of_turn_delay: 0.5 }),
      turn(2, "assistant", { llm_ttft: 0.5, tts_ttfb: 0.25 }),
    ]);
    expect(rows[0].total).toBeCloseTo(1.25);
    expect(rows[0].measured).toBe(false);
  });

  it("has no total for a greeting without figures", () => {
    expect(waterfallRows([turn(1, "assistant")])[0]).toMatchObject({ total: null, segments: [] });
  });
});

describe("axis", () => {
  it("rounds up to a step that gives at most five intervals", () => {
    const rows = waterfallRows([turn(1, "user"), turn(2, "assistant", { e2e_latency: 1.3 })]);
    expect(axis(rows)).toEqual({ max: 1.5, ticks: [0, 0.5, 1, 1.5] });
  });

  it("has a minimum span when nothing was measured", () => {
    expect(axis([]).max).toBe(0.5);
  });

  it("covers a stage that runs past the measured total", () => {
    const rows = waterfallRows([
      turn(1, "user", { end_of_turn_delay: 2.2 }),
      turn(2, "assistant", { e2e_latency: 1.0 }),
    ]);
    expect(axis(rows).max).toBeGreaterThanOrEqual(2.2);
  });
});

describe("formatSeconds", () => {
  it("shows milliseconds below a second and seconds above", () => {
    expect(formatSeconds(0.4123)).toBe("412 ms");
    expect(formatSeconds(1.5)).toBe("1.50 s");
    expect(formatSeconds(null)).toBe("—");
  });

  it("labels the axis without trailing zeros", () => {
    expect([0, 0.25, 1, 1.5].map(formatTick)).toEqual(["0", "0.25 s", "1 s", "1.5 s"]);
  });
});
