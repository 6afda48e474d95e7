// Formatting of the Workers page: load, heartbeat age, latency, state.

/** A worker's load (0–1 from its heartbeat) as a whole percentage, clamped to 0–100. */
export function loadPercent(load: number): number {
  if (!Number.isFinite(load)) return 0;
  return Math.min(100, Math.max(0, Math.round(load * 100)));
}

/** How long ago the heartbeat at `iso` arrived, e.g. "just now", "4s ago", "2m 5s ago". */
export function heartbeatAge(iso: string, now: number = Date.now()): string {
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return "—";
  const s = Math.max(0, Math.floor((now - at) / 1000));
  if (s < 1) return "just now";
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m}m ${s % 60}s ago` : `${m}m ago`;
  return `${Math.floor(m / 60)}h ${m % 60}m ago`;
}

/** A latency in seconds as "640 ms" or "1.25 s"; "—" while the worker has no turns to measure. */
export function formatLatency(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  return `${seconds.toFixed(2)} s`;
}

export type WorkerState = "ready" | "full" | "draining";

export function workerState(w: { draining: boolean; full: boolean }): WorkerState {
  if (w.draining) return "draining";
  return w.full ? "full" : "ready";
}

/** The load bar's colour: calm below the threshold's last 20 points, amber near it, red at it. */
export function loadLevel(load: number, threshold: number): "ok" | "high" | "full" {
  if (load >= threshold) return "full";
  return load >= threshold * 0.8 ? "high" : "ok";
}
