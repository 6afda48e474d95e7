"""Split extracted text into overlapping chunks along paragraph and sentence boundaries."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class _Piece:
    paragraph: int
    text: str


def chunk_text(text: str, *, size: int, overlap: int) -> list[str]:
    """Chunks of at most ``size`` characters, each repeating up to ``overlap`` characters of
    whole sentences from the end of the previous one.

    Sentences are never cut unless one alone is longer than ``size`` (then it is cut between
    words, and a word longer than ``size`` between characters). Sentences of one paragraph are
    joined by a space, paragraphs by a blank line.
    """
    if size <= 0:
        raise ValueError("size must be positive")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be at least 0 and smaller than size")
    pieces = _pieces(text, size)
    chunks: list[str] = []
    current: list[_Piece] = []
    for piece in pieces:
        if current and _joined_length([*current, piece]) > size:
            chunks.append(_join(current))
            current = _overlap_tail(current, overlap)
            while current and _joined_length([*current, piece]) > size:
                current.pop(0)
        current.append(piece)
    if current:
        chunks.append(_join(current))
    return chunks


def _pieces(text: str, size: int) -> list[_Piece]:
    pieces: list[_Piece] = []
    for index, paragraph in enumerate(_PARAGRAPH_BREAK.split(text)):
        paragraph = _WHITESPACE.sub(" ", paragraph).strip()
        if not paragraph:
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            pieces.extend(_Piece(index, part) for part in _fit(sentence, size))
    return pieces


def _fit(sentence: str, size: int) -> list[str]:
    """``sentence`` as is, or cut between words (characters, for giant words) to fit ``size``."""
    if len(sentence) <= size:
        return [sentence]
    parts: list[str] = []
    current = ""
    for word in sentence.split(" "):
        while len(word) > size:
            if current:
                parts.append(current)
                current = ""
            parts.append(word[:size])
            word = word[size:]
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size:
            parts.append(current)
            current = word
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


def _overlap_tail(pieces: list[_Piece], overlap: int) -> list[_Piece]:
    """The longest run of whole trailing pieces that fits in ``overlap`` characters, never all
    of ``pieces`` (each chunk must move forward)."""
    tail: list[_Piece] = []
    for piece in reversed(pieces[1:]):
        if _joined_length([piece, *tail]) > overlap:
            break
        tail.insert(0, piece)
    return tail


def _join(pieces: list[_Piece]) -> str:
    out = pieces[0].text
    for previous, piece in zip(pieces, pieces[1:], strict=False):
        out += (" " if piece.paragraph == previous.paragraph else "\n\n") + piece.text
    return out


def _joined_length(pieces: list[_Piece]) -> int:
    return len(_join(pieces))
