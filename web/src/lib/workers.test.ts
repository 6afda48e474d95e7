import { describe, expect, it } from "vitest";

import { formatLatency, heartbeatAge, loadLevel, loadPercent, workerState } from "./workers";

describe("loadPercent", () => {
  it("turns the heartbeat's 0–1 load into a whole percentage", () => {
    expect(loadPercent(0)).toBe(0);
    expect(loadPercent(0.5)).toBe(50);
    expect(loadPercent(0.756)).toBe(76);
    expect(loadPercent(1)).toBe(100);
  });

  it("never draws a bar outside 0–100", () => {
    expect(loadPercent(1.4)).toBe(100);
    expect(loadPercent(-0.2)).toBe(0);
    expect(loadPercent(Number.NaN)).toBe(0);
  });
});

describe("heartbeatAge", () => {
  const now = Date.parse("2025-01-01T12:00:00Z");
  it("says how long ago the last heartbeat came", () => {
    expect(heartbeatAge("2025-01-01T12:00:00Z", now)).toBe("just now");
    expect(heartbeatAge("2025-01-01T11:59:56Z", now)).toBe("4s ago");
    expect(heartbeatAge("2025-01-01T11:57:55Z", now)).toBe("2m 5s ago");
    expect(heartbeatAge("2025-01-01T11:57:00Z", now)).toBe("3m ago");
    expect(heartbeatAge("2025-01-01T09:30:00Z", now)).toBe("2h 30m ago");
  });

  it("treats a clock slightly ahead of the browser's as now, and garbage as unknown", () => {
    expect(heartbeatAge("2025-01-01T12:00:02Z", now)).toBe("just now");
    expect(heartbeatAge("yesterday-ish", now)).toBe("—");
  });
});

describe("formatLatency", () => {
  it("shows milliseconds under a second and seconds above", () => {
    expect(formatLatency(0.6404)).toBe("640 ms");
    expect(formatLatency(1.25)).toBe("1.25 s");
    expect(formatLatency(null)).toBe("—");
    expect(formatLatency(undefined)).toBe("—");
  });
});

describe("workerState / loadLevel", () => {
  it("draining wins over full", () => {
    expect(workerState({ draining: true, full: true })).toBe("draining");
    expect(workerState({ draining: false, full: true })).toBe("full");
    expect(workerState({ draining: false, full: false })).toBe("ready");
  });

  it("colours the bar by how close the load is to the threshold", () => {
    expect(loadLevel(0.1, 0.75)).toBe("ok");
    expect(loadLevel(0.61, 0.75)).toBe("high");
    expect(loadLevel(0.75, 0.75)).toBe("full");
  });
});
