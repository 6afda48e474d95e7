"""Post-call pieces without servers: PII masking, webhook signatures, the analysis answer
check and the CSV export."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from control_plane.jobs import Fail, RetryPolicy
from control_plane.postcall.analysis import json_schema, parse_answer
from control_plane.postcall.pii import redact, redact_values
from stimm.schema import AnalysisConfig, AnalysisField
from stimm.webhook_signature import SignatureError, sign, verify

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Call me on +1 (555) 010-2345.", "Call me on [phone number]."),
        ("it's 06 12 34 56 78", "it's [phone number]"),
        ("mail jane.doe@example.co.uk now", "mail [email] now"),
        ("card 4111 1111 1111 1111 exp", "card [card number] exp"),
        ("card 5500-0000-0000-0004", "card [card number]"),
        # left alone: not a valid card, dates, times, short numbers
        ("order 4111 1111 1111 1112", "order 4111 1111 1111 1112"),
        ("on 2024-05-03 at 10:30", "on 2024-05-03 at 10:30"),
        ("I am 42, flat 12B, 3 kids", "I am 42, flat 12B, 3 kids"),
    ],
)
def test_redact_masks_phones_emails_and_cards_only(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_redact_values_walks_json_and_keeps_non_text() -> None:
    value = {"phone": "555-0100", "n": 5550100, "ok": True, "list": ["a@b.io"]}
    assert redact_values(value) == {
        "phone": "[phone number]",
        "n": 5550100,
        "ok": True,
        "list": ["[email]"],
    }


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"e1"}'
    header = sign("s3cret-s3cret-s3cret", body, timestamp=1_700_000_000)
    digest = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={digest}"
    assert verify("s3cret-s3cret-s3cret", header, body, now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("header", "body", "now", "problem"),
    [
        (None, b"{}", 0, "no Stimm-Signature"),
        ("v1=abc", b"{}", 0, "no timestamp"),
        ("t=100,v1=" + "0" * 64, b"{}", 100, "does not match"),
        ("SIGNED", b'{"tampered":1}', 100, "does not match"),
        ("SIGNED", b"{}", 100 + 301, "old"),  # a replay past the window
    ],
)
def test_verify_refuses_missing_wrong_and_replayed_signatures(
    header: str | None, body: bytes, now: float, problem: str
) -> None:
    if header == "SIGNED":
        header = sign("key-key-key-key-key", b"{}", timestamp=100)
    with pytest.raises(SignatureError, match=problem):
        verify("key-key-key-key-key", header, body, now=now)


CONFIG = AnalysisConfig(
    enabled=True,
    fields=[
        AnalysisField(name="resolved", type="boolean", description="Solved?"),
        AnalysisField(name="callbacks", type="integer", description="How many"),
    ],
)


def test_answer_is_checked_against_the_fields() -> None:
    result = parse_answer(
        CONFIG, '```json\n{"summary": "S", "resolved": true, "callbacks": 2, "x": 1}\n```'
    )
    assert result.summary == "S"
    assert result.data == {"resolved": True, "callbacks": 2}  # keys not asked for are dropped
    assert json_schema(CONFIG)["required"] == ["summary", "resolved", "callbacks"]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("The caller was happy.", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"summary": "S", "resolved": "yes", "callbacks": 2}', "resolved"),
        ('{"summary": "S", "resolved": true, "callbacks": "2"}', "callbacks"),
        ('{"summary": "S", "resolved": true}', "callbacks: Field required"),
    ],
)
def test_a_malformed_answer_fails_with_the_reason(answer: str, problem: str) -> None:
    with pytest.raises(Fail, match=problem):
        parse_answer(CONFIG, answer)


def test_duplicate_field_names_are_refused() -> None:
    field = {"name": "a", "description": "A"}
    with pytest.raises(ValueError, match="listed twice"):
        AnalysisConfig.model_validate({"fields": [field, field]})


def test_retry_delays_double_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=8, base_s=5, max_s=30)
    assert [policy.delay(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
