"""Short-lived HTTP clients for probing dependencies (``/health``'s LiveKit check, the SIP check
of ``/api/telephony``), all on one TLS context per process."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    # loading the CA bundle is ~37 ms of CPU: once per process, not once per probe (a fresh
    # client per /health held the endpoint to ~20 requests/s; bench/api_load.py)
    return httpx.create_ssl_context()


def probe_client(timeout: float) -> httpx.AsyncClient:
    """A client for one probe of a dependency, on the process's one TLS context."""
    return httpx.AsyncClient(timeout=timeout, verify=_tls())
