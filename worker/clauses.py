"""Speak a reply's first clause as soon as it is complete.

livekit feeds a non-streaming TTS (Piper, OpenAI-style HTTP speech) one sentence at a time, so
the first audio waits for the whole first sentence to be generated and then synthesized. A
long opening sentence ("The current exhibition, which opened last spring, shows ...") costs
the caller the synthesis time of all of it. ``ClauseFirstTokenizer`` cuts only the first
sentence of each reply at its first clause boundary (a comma, semicolon, colon or dash
followed by a space) once that clause is long enough to sound whole; everything after is
split by sentences as livekit does. The caller hears the first clause while the rest is
synthesized behind it.
"""

from __future__ import annotations

import re

from livekit.agents import tokenize
from livekit.agents.tokenize import SentenceStream

CLAUSE_END = re.compile(r"[,;:](?=\s)|\s[-–—](?=\s)")
"""A clause boundary: punctuation followed by a space ("1,000" is not one)."""
MIN_CLAUSE_CHARS = 20
"""A shorter first clause ("Yes," "Well, sure,") is merged with what follows: spoken alone it
sounds clipped and saves almost nothing. 20 is also livekit's shortest sentence."""


def first_clause_end(sentence: str, min_chars: int = MIN_CLAUSE_CHARS) -> int | None:
    """Where the first clause of ``sentence`` at least ``min_chars`` long ends, if any.

    Returns:
        The index just past the boundary punctuation, or ``None`` when the sentence has no
        boundary after ``min_chars`` characters or nothing but spaces follows it.
    """
    for match in CLAUSE_END.finditer(sentence, min_chars - 1):
        end = match.end()
        if sentence[end:].strip():
            return end
    return None


class ClauseFirstTokenizer(tokenize.SentenceTokenizer):
    """Sentences, except that each reply's first sentence is cut after its first clause."""

    def __init__(self, *, min_clause_chars: int = MIN_CLAUSE_CHARS) -> None:
        # what livekit uses for a non-streaming TTS (agent.tts_node), kept for the rest
        self._sentences = tokenize.blingfire.SentenceTokenizer(retain_format=True)
        self._min_clause_chars = min_clause_chars

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return self._split(text, first=True)

    def stream(self, *, language: str | None = None) -> SentenceStream:
        return _ClauseFirstStream(self)

    def _split(self, text: str, *, first: bool) -> list[str]:
        sentences = self._sentences.tokenize(text)
        if first and sentences:
            end = first_clause_end(sentences[0], self._min_clause_chars)
            if end is not None:
                head, tail = sentences[0][:end], sentences[0][end:]
                return [head, tail.lstrip(), *sentences[1:]]
        return sentences


class _ClauseFirstStream(tokenize.BufferedSentenceStream):
    """livekit's buffered sentence stream; only the segment's first token may be a clause.

    The buffer hands the splitter the text not yet emitted; while that is still all the
    segment's text, nothing has been spoken and the first clause may be cut off.
    """

    def __init__(self, tokenizer: ClauseFirstTokenizer) -> None:
        self._segment_chars = 0
        super().__init__(
            tokenizer=lambda text: tokenizer._split(text, first=len(text) == self._segment_chars),
            # livekit's defaults for sentences (blingfire.SentenceTokenizer)
            min_token_len=20,
            min_ctx_len=10,
        )

    def push_text(self, text: str) -> None:
        self._segment_chars += len(text)
        super().push_text(text)

    def flush(self) -> None:
        super().flush()
        self._segment_chars = 0
