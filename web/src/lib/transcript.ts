// Live transcript lines from LiveKit transcription text streams (topic `lk.transcription`).

export interface StreamLike {
  text: string;
  participantInfo: { identity: string };
  streamInfo: { id: string; timestamp: number; attributes?: Record<string, string> };
}

export interface TranscriptLine {
  id: string;
  speaker: "user" | "agent";
  text: string;
  final: boolean;
}

/**
 * One line per transcription segment, in the order they started. The user's own speech is
 * transcribed by the agent and published on the user's behalf (`lk.transcribed_track_id` names
 * the user's track), so the speaker is the participant the transcript is *of*, not its sender.
 */
export function transcriptLines(
  streams: StreamLike[],
  localIdentity: string | undefined,
): TranscriptLine[] {
  const lines: TranscriptLine[] = [];
  const seen = new Map<string, TranscriptLine>();
  const ordered = [...streams].sort((a, b) => a.streamInfo.timestamp - b.streamInfo.timestamp);
  for (const s of ordered) {
    const attrs = s.streamInfo.attributes ?? {};
    const id = attrs["lk.segment_id"] ?? s.streamInfo.id;
    const text = s.text.trim();
    const line: TranscriptLine = {
      id,
      speaker: s.participantInfo.identity === localIdentity ? "user" : "agent",
      text,
      final: attrs["lk.transcription_final"] === "true",
    };
    const prev = seen.get(id);
    if (prev) Object.assign(prev, line);
    else if (text) {
      seen.set(id, line);
      lines.push(line);
    }
  }
  return lines.filter((l) => l.text);
}
