"""Chunking: sizes, sentence boundaries, overlap between neighbours, nothing lost."""

from __future__ import annotations

import re

import pytest

from control_plane.knowledge.chunking import chunk_text

pytestmark = pytest.mark.unit

SENTENCES = [
    f"Sentence number {i} talks about topic {i * 7 % 13} in some detail." for i in range(40)
]
TEXT = "\n\n".join(" ".join(SENTENCES[i : i + 5]) for i in range(0, 40, 5))


def words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def test_chunks_respect_size_keep_sentences_whole_and_cover_everything() -> None:
    chunks = chunk_text(TEXT, size=200, overlap=70)
    assert len(chunks) > 5
    assert all(len(c) <= 200 for c in chunks)
    for chunk in chunks:
        assert chunk.startswith("Sentence number ")
        assert chunk.endswith(".")
    for sentence in SENTENCES:
        assert any(sentence in c for c in chunks), sentence


def test_neighbouring_chunks_share_whole_sentences_up_to_the_overlap() -> None:
    chunks = chunk_text(TEXT, size=200, overlap=70)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        first_sentence = re.match(r"[^.]*\.", current)
        assert first_sentence is not None
        assert first_sentence.group(0) in previous, (previous, current)
    without_overlap = chunk_text(TEXT, size=200, overlap=0)
    assert len(without_overlap) < len(chunks)
    assert " ".join(words(" ".join(without_overlap))) == " ".join(words(TEXT))


def test_paragraphs_stay_separated_and_short_text_is_one_chunk() -> None:
    text = "Opening hours.\n\n\n   Closed on Mondays.  \n"
    assert chunk_text(text, size=500, overlap=50) == ["Opening hours.\n\nClosed on Mondays."]
    assert chunk_text("", size=500, overlap=50) == []
    assert chunk_text(" \n\n ", size=500, overlap=50) == []


def test_a_sentence_longer_than_the_size_is_cut_between_words() -> None:
    long_sentence = " ".join(f"word{i}" for i in range(100))
    chunks = chunk_text(long_sentence, size=60, overlap=0)
    assert all(len(c) <= 60 for c in chunks)
    assert " ".join(chunks).split() == long_sentence.split()
    giant = "x" * 150
    assert chunk_text(giant, size=60, overlap=10) == ["x" * 60, "x" * 60, "x" * 30]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_invalid_sizes_are_rejected(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", size=size, overlap=overlap)
