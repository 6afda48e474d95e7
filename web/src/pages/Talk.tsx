import {
  LiveKitRoom,
  RoomAudioRenderer,
  StartAudio,
  TrackToggle,
  useConnectionState,
  useLocalParticipant,
  useMediaDeviceSelect,
  useMultibandTrackVolume,
  useRoomContext,
  useTranscriptions,
  useVoiceAssistant,
} from "@livekit/components-react";
import { ConnectionState, Track } from "livekit-client";
import { useEffect, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";

import { useAgents, useSession, useStartSession } from "../api/queries";
import type { SessionCreated } from "../api/types";
import { Waterfall } from "../components/Waterfall";
import { Empty, ErrorAlert, Field, PageHead, StatusBadge } from "../components/ui";
import { transcriptLines } from "../lib/transcript";

export function TalkPage() {
  const [params, setParams] = useSearchParams();
  const agents = useAgents();
  const start = useStartSession();
  const [call, setCall] = useState<SessionCreated | null>(null);
  const [ended, setEnded] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const agentId = params.get("agent") ?? agents.data?.items.find((a) => a.is_default)?.id ?? agents.data?.items[0]?.id ?? "";

  const join = () => {
    setEnded(null);
    setError(null);
    start.mutate(agentId, { onSuccess: setCall });
  };

  return (
    <>
      <PageHead title="Talk" sub="Call an agent from this browser and watch where the time goes." />
      <div className="card" style={{ marginBottom: 20 }}>
        <div className="card-body row" style={{ alignItems: "flex-end" }}>
          <div style={{ width: 320 }}>
            <Field label="Agent" htmlFor="talk-agent" path="agent_id" error={start.error}>
              <select
                id="talk-agent"
                className="select"
                value={agentId}
                disabled={!!call}
                onChange={(e) => setParams({ agent: e.target.value })}
              >
                {agents.data?.items.map((a) => (
                  <option key={a.id} value={a.id}>
                    {a.name}
                  </option>
                ))}
              </select>
            </Field>
          </div>
          {call ? (
            <span className="badge blue">
              <span className="dot" /> In a call · room {call.room}
            </span>
          ) : (
            <button className="btn primary" onClick={join} disabled={!agentId || start.isPending}>
              {start.isPending ? "Starting…" : "Start call"}
            </button>
          )}
          <span className="spacer" />
          {ended && (
            <Link className="btn" to={`/sessions/${ended}`}>
              View this session
            </Link>
          )}
        </div>
        {(start.error || error) && (
          <div className="card-body" style={{ paddingTop: 0 }}>
            <ErrorAlert error={start.error ?? new Error(error ?? "")} />
          </div>
        )}
      </div>
      {call ? (
        <LiveKitRoom
          serverUrl={call.livekit_url}
          token={call.token}
          connect
          audio
          video={false}
          onDisconnected={() => {
            setEnded(call.session_id);
            setCall(null);
          }}
          onError={(e) => setError(`Could not join the room: ${e.message}`)}
          onMediaDeviceFailure={() => setError("The microphone could not be opened. Check the browser's permission.")}
        >
          <CallView sessionId={call.session_id} />
          <RoomAudioRenderer />
        </LiveKitRoom>
      ) : ended ? (
        <EndedCall sessionId={ended} />
      ) : (
        <div className="card">
          <Empty title="No call in progress">
            <p>Pick an agent and start a call. Your browser will ask for the microphone.</p>
          </Empty>
        </div>
      )}
    </>
  );
}

function AgentOrb({ state }: { state: string }) {
  const { audioTrack } = useVoiceAssistant();
  const bands = useMultibandTrackVolume(audioTrack, { bands: 5 });
  return (
    <div className={`orb ${state}`} aria-hidden>
      <div className="bars">
        {bands.map((v, i) => (
          <span key={i} style={{ height: 6 + Math.min(16, v * 40) }} />
        ))}
      </div>
    </div>
  );
}

const STATE_TEXT: Record<string, string> = {
  connecting: "Connecting",
  initializing: "Agent is joining",
  "pre-connect-buffering": "Agent is joining",
  listening: "Listening",
  thinking: "Thinking",
  speaking: "Speaking",
  disconnected: "Waiting for the agent",
  failed: "Agent failed",
  idle: "Idle",
};

function CallView({ sessionId }: { sessionId: string }) {
  const room = useRoomContext();
  const connection = useConnectionState();
  const { state } = useVoiceAssistant();
  const { localParticipant } = useLocalParticipant();
  const streams = useTranscriptions();
  const lines = transcriptLines(streams, localParticipant.identity);
  const session = useSession(sessionId, "live");
  const mics = useMediaDeviceSelect({ kind: "audioinput", room });
  const scroller = useRef<HTMLDivElement>(null);
  useEffect(() => {
    scroller.current?.scrollTo({ top: scroller.current.scrollHeight });
  }, [lines.length, lines.at(-1)?.text]);

  const shownState = connection === ConnectionState.Connected ? state : "connecting";
  return (
    <div className="split even">
      <div className="card">
        <div className="talk-stage">
          <AgentOrb state={shownState} />
          <div>
            <div className="state-label" data-testid="agent-state">
              {STATE_TEXT[shownState] ?? shownState}
            </div>
            <div className="small muted">
              {session.data ? <StatusBadge status={session.data.status} /> : null} session {sessionId.slice(0, 8)}
            </div>
          </div>
        </div>
        <div className="transcript" ref={scroller} data-testid="transcript" aria-live="polite">
          {!lines.length && <div className="muted small">The conversation appears here as it is spoken.</div>}
          {lines.map((l) => (
            <div key={l.id} className={`bubble ${l.speaker}${l.final ? "" : " interim"}`} data-speaker={l.speaker}>
              <div className="who">{l.speaker === "user" ? "You" : "Agent"}</div>
              {l.text}
            </div>
          ))}
        </div>
        <div className="controls">
          <TrackToggle source={Track.Source.Microphone} showIcon={false} className="btn">
            {localParticipant.isMicrophoneEnabled ? "Mute" : "Unmute"}
          </TrackToggle>
          <select
            className="select"
            style={{ width: 260 }}
            aria-label="Microphone"
            value={mics.activeDeviceId}
            onChange={(e) => void mics.setActiveMediaDevice(e.target.value)}
          >
            {mics.devices.map((d, i) => (
              <option key={d.deviceId || i} value={d.deviceId}>
                {d.label || `Microphone ${i + 1}`}
              </option>
            ))}
          </select>
          <StartAudio label="Allow audio playback" className="btn" />
          <span className="spacer" />
          <button className="btn solid-danger" onClick={() => void room.disconnect()}>
            Hang up
          </button>
        </div>
      </div>
      <div className="card">
        <div className="card-head">
          <div>
            <h2>Latency per turn</h2>
            <p>From the end of your speech to the agent's first audio.</p>
          </div>
        </div>
        <Waterfall turns={session.data?.turns ?? []} />
      </div>
    </div>
  );
}

function EndedCall({ sessionId }: { sessionId: string }) {
  const session = useSession(sessionId, "until-ended");
  return (
    <div className="card">
      <div className="card-head">
        <div>
          <h2>Call ended</h2>
          <p>Latency of each turn, as recorded by the worker.</p>
        </div>
        {session.data && <StatusBadge status={session.data.status} />}
      </div>
      <Waterfall turns={session.data?.turns ?? []} />
    </div>
  );
}
