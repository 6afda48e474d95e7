"""Short-lived signed URLs for a session's recording.

The console's ``<audio>`` element cannot send an API key, so ``GET /api/sessions/{id}/recording``
(API key) hands out a URL carrying its expiry and an HMAC of the session id and that expiry;
the audio route checks both and nothing else. The HMAC key is derived from
``STIMM_SECRET_KEY``, so every control-plane replica accepts the URLs of the others.
"""

from __future__ import annotations

import hashlib
import hmac
import time

_PURPOSE = b"stimm recording url v1"


class UrlSigner:
    def __init__(self, secret_key: str, ttl_s: int) -> None:
        self._key = hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()
        self.ttl_s = ttl_s

    def _signature(self, session_id: str, expires: int) -> str:
        msg = f"{session_id}\n{expires}".encode("utf-8", "replace")
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def sign(self, session_id: str, now: float | None = None) -> tuple[str, int]:
        """The query string of a URL for ``session_id``, and when it expires (epoch s)."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        return f"expires={expires}&signature={self._signature(session_id, expires)}", expires

    def check(
        self, session_id: str, expires: int, signature: str, now: float | None = None
    ) -> str | None:
        """Why the URL is refused, or ``None`` when it is valid."""
        expected = self._signature(session_id, expires).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            return "The recording link is not valid"
        if expires < (now if now is not None else time.time()):
            return "The recording link has expired; open the call again for a new one"
        return None
