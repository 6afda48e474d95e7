"""Web origins as browsers send them in the ``Origin`` header: ``scheme://host[:port]``."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str) -> str:
    """``value`` as a browser would send it (lower case, no default port, no trailing slash).

    Raises ``ValueError`` with a message a person can act on for anything that is not an
    http(s) origin: a path, query, credentials or wildcard.
    """
    text = value.strip().rstrip("/")
    example = "e.g. https://www.example.com or http://localhost:5173"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r} is not a web origin ({example})") from None
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) origin ({example})")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            f"{value!r} has more than an origin: give only scheme, host and port ({example})"
        )
    if "*" in parts.hostname:
        raise ValueError(f"{value!r}: wildcards are not supported; list each origin ({example})")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Whether a request's ``Origin`` header names one of ``allowed`` (normalized origins)."""
    if not origin or origin == "null":
        return False
    try:
        return normalize_origin(origin) in allowed
    except ValueError:
        return False
