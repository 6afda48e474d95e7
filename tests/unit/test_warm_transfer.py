"""The colleague's spoken answer to a warm transfer, as the agent reads it."""

from __future__ import annotations

import pytest

from worker.warm_transfer import heard_decision


@pytest.mark.parametrize(
    ("words", "decision"),
    [
        ("Yes, put them through.", "accepted"),
        ("Okay.", "accepted"),
        ("No, I'm busy right now.", "declined"),
        ("Sorry, I can't take it.", "declined"),
        ("Hello? Who is this?", None),
        ("I know the customer", None),  # "know" is not "no"
    ],
)
def test_colleague_words_accept_or_decline(words: str, decision: str | None) -> None:
    assert heard_decision(words) == decision
