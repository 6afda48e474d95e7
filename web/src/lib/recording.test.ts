import { describe, expect, it } from "vitest";

import type { Turn } from "../api/types";
import { activeTurn, clock, turnSpans } from "./recording";

const turn = (id: number, started: string | null, ended: string | null): Turn =>
  ({ id, started_at: started, ended_at: ended }) as Turn;

describe("turn positions in a recording", () => {
  const t0 = "2026-12-01T10:00:00Z";
  const turns = [
    turn(1, "2026-12-01T10:00:01.500Z", "2026-12-01T10:00:04Z"),
    turn(2, null, null),
    turn(3, "2026-12-01T10:00:05Z", "2026-12-01T10:00:08.250Z"),
  ];

  it("places turns by their times and skips those without", () => {
    expect(turnSpans(turns, t0)).toEqual([
      { id: 1, start: 1.5, end: 4 },
      { id: 3, start: 5, end: 8.25 },
    ]);
  });

  it("highlights the turn being spoken, and none in a pause", () => {
    const spans = turnSpans(turns, t0);
    expect(activeTurn(spans, 0.5)).toBeNull();
    expect(activeTurn(spans, 2)).toBe(1);
    expect(activeTurn(spans, 4.6)).toBeNull();
    expect(activeTurn(spans, 6)).toBe(3);
  });

  it("formats positions", () => {
    expect(clock(0)).toBe("0:00");
    expect(clock(75.9)).toBe("1:15");
  });
});
