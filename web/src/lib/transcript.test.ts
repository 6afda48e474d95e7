import { describe, expect, it } from "vitest";

import { type StreamLike, transcriptLines } from "./transcript";

function stream(id: string, who: string, text: string, ts: number, final = true, segment?: string): StreamLike {
  return {
    text,
    participantInfo: { identity: who },
    streamInfo: {
      id,
      timestamp: ts,
      attributes: {
        "lk.transcription_final": String(final),
        ...(segment ? { "lk.segment_id": segment } : {}),
      },
    },
  };
}

describe("transcriptLines", () => {
  it("tells the user's words from the agent's and keeps them in time order", () => {
    const lines = transcriptLines(
      [stream("b", "web-1", "When is it open?", 2), stream("a", "agent-x", "Hello!", 1)],
      "web-1",
    );
    expect(lines.map((l) => [l.speaker, l.text])).toEqual([
      ["agent", "Hello!"],
      ["user", "When is it open?"],
    ]);
  });

  it("replaces an interim segment by its final text instead of adding a line", () => {
    const lines = transcriptLines(
      [stream("s1", "web-1", "When is", 1, false, "seg"), stream("s2", "web-1", "When is it open?", 2, true, "seg")],
      "web-1",
    );
    expect(lines).toEqual([{ id: "seg", speaker: "user", text: "When is it open?", final: true }]);
  });

  it("drops empty segments", () => {
    expect(transcriptLines([stream("x", "agent", "  ", 1)], "web-1")).toEqual([]);
  });
});
