"""Masking of phone numbers, email addresses and payment card numbers in stored text.

livekit-agents' own ``telemetry.pii`` drops whole span attributes that carry conversation
content; it does not find entities inside a text, which is what a stored transcript needs.
Cards are recognised by the Luhn checksum (13-19 digits, spaces or dashes between groups),
phone numbers by 7-15 digits with the usual separators, dates and times left alone.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = "[email]"
CARD = "[card number]"
PHONE = "[phone number]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d+])\d(?:[ -]?\d){12,18}(?!\d)")
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d\s().-]{5,}\d(?!\w)")
_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD if _luhn(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE.match(text.strip()):
        return text
    return PHONE


def redact(text: str) -> str:
    """``text`` with emails, card numbers and phone numbers replaced by ``[email]``,
    ``[card number]`` and ``[phone number]``."""
    text = _EMAIL.sub(EMAIL, text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(_phone, text)


def redact_values(value: Any) -> Any:
    """Every string in a JSON-like value redacted (numbers are left as they are)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redact_values(v) for v in value]
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    return value
