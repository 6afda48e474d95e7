"""Signatures of Stimm's webhooks: how they are made, and a check for receivers.

Every delivery carries ``Stimm-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is
HMAC-SHA256, keyed with the endpoint's secret, of ``"<t>.<raw request body>"``. A receiver
recomputes it over the body exactly as received, compares in constant time, and refuses a
``t`` older than its replay window (``DEFAULT_TOLERANCE_S``: 5 minutes). Each attempt is
signed anew, so a retry an hour later still carries a fresh timestamp; ``Stimm-Event-Id`` is
the same on every attempt and resend, for receivers to drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Stimm-Signature"
EVENT_ID_HEADER = "Stimm-Event-Id"
EVENT_TYPE_HEADER = "Stimm-Event"
DELIVERY_ID_HEADER = "Stimm-Delivery-Id"
DEFAULT_TOLERANCE_S = 300


class SignatureError(ValueError):
    """The signature header is missing, malformed, wrong or too old."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Stimm-Signature`` header value for ``body``, signed now (or at ``timestamp``)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> int:
    """Check a delivery's signature; returns its timestamp.

    Raises:
        SignatureError: If the header is missing or malformed, no ``v1`` matches, or the
            timestamp is further than ``tolerance_s`` from now (a replay).
    """
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    parts = [p.partition("=")[::2] for p in header.split(",")]
    try:
        timestamp = int(next(v for k, v in parts if k.strip() == "t"))
    except (StopIteration, ValueError) as e:
        raise SignatureError("the signature has no timestamp") from e
    signatures = [v.strip() for k, v in parts if k.strip() == "v1"]
    expected = _digest(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise SignatureError("the signature does not match the body")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError(f"the signature is {current - timestamp:.0f} s old")
    return timestamp
