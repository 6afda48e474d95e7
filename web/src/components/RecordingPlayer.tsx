// A call's recording: its waveform (caller on top, agent below), play/pause, and seeking by turn.

import { type Ref, useEffect, useImperativeHandle, useMemo, useRef, useState } from "react";
import WaveSurfer from "wavesurfer.js";

import type { Recording, Turn } from "../api/types";
import { activeTurn, clock, turnSpans } from "../lib/recording";
import { ErrorAlert } from "./ui";

export interface PlayerHandle {
  /** Play from the start of a turn; false when the turn has no place in the recording. */
  playTurn(turnId: number): boolean;
}

type State = "loading" | "paused" | "playing" | "ended" | "error";

export function RecordingPlayer(props: {
  recording: Recording;
  turns: Turn[];
  onActiveTurn: (turnId: number | null) => void;
  ref?: Ref<PlayerHandle>;
}) {
  const { recording, turns, onActiveTurn } = props;
  const container = useRef<HTMLDivElement>(null);
  const wave = useRef<WaveSurfer | null>(null);
  const [state, setState] = useState<State>("loading");
  const [time, setTime] = useState(0);
  const [error, setError] = useState<Error | null>(null);
  const spans = useMemo(() => turnSpans(turns, recording.started_at), [turns, recording.started_at]);
  const spansRef = useRef(spans);
  spansRef.current = spans;
  const onActiveRef = useRef(onActiveTurn);
  onActiveRef.current = onActiveTurn;

  useEffect(() => {
    if (!container.current) return;
    const ws = WaveSurfer.create({
      container: container.current,
      url: recording.url,
      height: 48,
      waveColor: ["#6366f1", "#10b981"],
      progressColor: ["#3730a3", "#047857"],
      cursorColor: "#111827",
      barWidth: 2,
      barGap: 1,
      normalize: true,
      dragToSeek: true,
    });
    wave.current = ws;
    const update = (t: number, playing: boolean) => {
      setTime(t);
      onActiveRef.current(playing ? activeTurn(spansRef.current, t) : null);
    };
    ws.on("ready", () => setState("paused"));
    ws.on("play", () => setState("playing"));
    ws.on("pause", () => setState((s) => (s === "ended" ? s : "paused")));
    ws.on("finish", () => {
      setState("ended");
      onActiveRef.current(null);
    });
    ws.on("timeupdate", (t) => update(t, ws.isPlaying()));
    ws.on("error", (e) => {
      setState("error");
      setError(e);
    });
    return () => {
      onActiveRef.current(null);
      ws.destroy();
      wave.current = null;
    };
  }, [recording.url]);

  useImperativeHandle(
    props.ref,
    () => ({
      playTurn(turnId) {
        const span = spansRef.current.find((s) => s.id === turnId);
        const ws = wave.current;
        if (!span || !ws || state === "loading" || state === "error") return false;
        ws.setTime(span.start);
        void ws.play();
        return true;
      },
    }),
    [state],
  );

  const ready = state !== "loading" && state !== "error";
  const toggle = () => {
    const ws = wave.current;
    if (!ws) return;
    if (state === "ended") ws.setTime(0);
    void ws.playPause();
  };
  return (
    <div className="card" role="region" aria-label="Recording">
      <div className="card-head">
        <h2>Recording</h2>
        <span className="muted small">
          stereo · caller left, agent right · kept until {new Date(recording.expires_at).toLocaleDateString()}
        </span>
      </div>
      <div className="card-body recording" data-testid="recording-player" data-state={state} data-time={time.toFixed(2)}>
        <button type="button" className="btn primary" onClick={toggle} disabled={!ready}>
          {state === "playing" ? "Pause" : "Play"}
        </button>
        <div className="recording-wave">
          <div className="recording-labels muted small" aria-hidden>
            <span>Caller</span>
            <span>Agent</span>
          </div>
          <div ref={container} className="recording-canvas" />
        </div>
        <span className="mono small" data-testid="recording-time">
          {clock(time)} / {clock(recording.duration_s)}
        </span>
      </div>
      {error && <ErrorAlert error={error} extra={["The recording could not be loaded."]} />}
    </div>
  );
}
