"""Short-lived HTTP clients for probing dependencies (``/health``'s LiveKit check, the SIP check
of ``/api/telephony``), all on the process's one TLS context (``stimm/tls.py``: a fresh client
per /health held the endpoint to ~20 requests/s; bench/api_load.py)."""

from __future__ import annotations

import httpx

from stimm.tls import tls_context


def probe_client(timeout: float) -> httpx.AsyncClient:
    """A client for one probe of a dependency, on the process's one TLS context."""
    return httpx.AsyncClient(timeout=timeout, verify=tls_context())
