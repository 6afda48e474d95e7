"""One TLS context per process for the HTTP clients Stimm creates.

``httpx`` builds a context, loading the CA bundle, for every client or transport made without
one: ~18 ms of CPU each on a 2-core machine. The control plane's probes run per request and a
worker's job made two clients as it started (the control-plane client, the webhooks' egress
client), so each took its share of the time before the agent joined. A context is safe to
share between clients and threads.
"""

from __future__ import annotations

import functools
import ssl

import httpx
import httpx2


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's context: certificate checks as httpx does them by default."""
    return httpx.create_ssl_context()


@functools.cache
def provider_tls_context() -> ssl.SSLContext:
    """The process's context for provider clients on ``httpx2`` (the OpenAI SDK's HTTP
    library): the system's CA store (or ``SSL_CERT_FILE``), as those clients trust by default,
    so a self-hosted LLM behind a private CA works as it does with the plugin's own client."""
    return httpx2.create_ssl_context()
