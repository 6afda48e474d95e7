// One widget call: ask the control plane for a session with the publishable key, join the
// room with the microphone on, play the agent, and follow the live captions that
// livekit-agents publishes as text streams on the `lk.transcription` topic.

import { Room, RoomEvent, Track } from "livekit-client";

import type { SessionCreated } from "../../src/api/types";
import { type StreamLike, type TranscriptLine, transcriptLines } from "../../src/lib/transcript";
import { type WidgetOptions, errorDetail, startErrorText } from "./options";

export type CallState = "idle" | "starting" | "connected" | "ended" | "failed";

export interface CallEvents {
  onState(state: CallState, message?: string): void;
  onCaptions(lines: TranscriptLine[]): void;
  /** Audio elements of the agent's voice, to be put in the page (they play once attached). */
  onAudio(element: HTMLMediaElement): void;
}

export class StartError extends Error {}

/** POST /api/widget/sessions with the publishable key; a readable error when refused. */
export async function createSession(options: WidgetOptions): Promise<SessionCreated> {
  let resp: Response;
  try {
    resp = await fetch(`${options.server}/api/widget/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${options.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(options.agentId ? { agent_id: options.agentId } : {}),
    });
  } catch {
    throw new StartError(startErrorText(0));
  }
  const body: unknown = await resp.json().catch(() => null);
  if (!resp.ok) throw new StartError(startErrorText(resp.status, errorDetail(body)));
  return body as SessionCreated;
}

export class WidgetCall {
  private room: Room | null = null;
  private streams: StreamLike[] = [];

  constructor(
    private readonly options: WidgetOptions,
    private readonly events: CallEvents,
  ) {}

  async start(): Promise<void> {
    this.streams = [];
    this.events.onCaptions([]);
    this.events.onState("starting");
    try {
      const session = await createSession(this.options);
      const room = new Room();
      this.room = room;
      room.registerTextStreamHandler("lk.transcription", async (reader, participant) => {
        const stream: StreamLike = {
          text: "",
          participantInfo: { identity: participant.identity },
          streamInfo: { id: reader.info.id, timestamp: reader.info.timestamp, attributes: reader.info.attributes },
        };
        this.streams.push(stream);
        try {
          for await (const chunk of reader) {
            stream.text += chunk;
            this.publishCaptions();
          }
        } catch {
          // the room went away mid-caption (a hang-up while the agent speaks): what arrived stays
        }
        this.publishCaptions();
      });
      room.on(RoomEvent.TrackSubscribed, (track) => {
        if (track.kind === Track.Kind.Audio) this.events.onAudio(track.attach());
      });
      room.on(RoomEvent.Disconnected, () => {
        if (this.room === room) {
          this.room = null;
          this.events.onState("ended");
        }
      });
      await room.connect(session.livekit_url, session.token);
      await room.localParticipant.setMicrophoneEnabled(true);
      await room.startAudio();
      this.events.onState("connected");
    } catch (e) {
      await this.stop();
      const message =
        e instanceof StartError ? e.message : `The call could not start: ${e instanceof Error ? e.message : String(e)}`;
      this.events.onState("failed", message);
    }
  }

  async stop(): Promise<void> {
    const room = this.room;
    this.room = null;
    if (room) {
      await room.disconnect();
      this.events.onState("ended");
    }
  }

  private publishCaptions(): void {
    this.events.onCaptions(transcriptLines(this.streams, this.room?.localParticipant.identity));
  }
}
