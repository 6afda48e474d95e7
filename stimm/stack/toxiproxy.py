"""toxiproxy between the stack's services: cut a link, slow it down, then heal it.

toxiproxy-server (Shopify, Go) is built pinned like the LiveKit binaries and driven through
its HTTP API (https://github.com/Shopify/toxiproxy#http-api).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from .binaries import TOXIPROXY, ensure_binary
from .process import ManagedProcess, free_port, http_ok


def start_toxiproxy(log_dir: Path, port: int = 0) -> tuple[ManagedProcess, Toxiproxy]:
    """Start toxiproxy-server on loopback; returns the process and a client of its API."""
    port = port or free_port()
    proc = ManagedProcess(
        "toxiproxy",
        [str(ensure_binary(TOXIPROXY)), "-host", "127.0.0.1", "-port", str(port)],
        log_dir=log_dir,
        stop_timeout=5.0,
    )
    proc.start()
    proc.wait_ready(lambda: http_ok(f"http://127.0.0.1:{port}/version"), timeout=15)
    return proc, Toxiproxy(f"http://127.0.0.1:{port}")


class Toxiproxy:
    """A client of toxiproxy's HTTP API.

    Args:
        api_url: Where toxiproxy-server listens, e.g. ``http://127.0.0.1:8474``.
    """

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self._http = httpx.Client(base_url=api_url, timeout=5.0)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: Any = None) -> Any:
        resp = self._http.request(method, path, json=json)
        if resp.status_code >= 400:
            raise RuntimeError(f"toxiproxy {method} {path}: HTTP {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    def create(self, name: str, upstream_port: int) -> int:
        """A proxy to ``127.0.0.1:upstream_port``; returns the loopback port it listens on."""
        port = free_port()
        self._call(
            "POST",
            "/proxies",
            {
                "name": name,
                "listen": f"127.0.0.1:{port}",
                "upstream": f"127.0.0.1:{upstream_port}",
                "enabled": True,
            },
        )
        return port

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabling a proxy closes its connections and refuses new ones until re-enabled."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self, proxy: str, kind: str, attributes: dict[str, Any], *, stream: str = "downstream"
    ) -> str:
        """Add a toxic (``latency``, ``timeout``, ``reset_peer``…); returns its name."""
        name = f"{kind}_{stream}"
        body = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        self._call("POST", f"/proxies/{proxy}/toxics", body)
        return name

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self._call("POST", "/reset")

    @contextmanager
    def down(self, name: str) -> Iterator[None]:
        """The link is cut inside the block and restored after it."""
        self.set_enabled(name, False)
        try:
            yield
        finally:
            self.set_enabled(name, True)

    @contextmanager
    def slow(self, name: str, latency_ms: int, stream: str = "downstream") -> Iterator[None]:
        """Every byte from the upstream (``downstream`` stream) waits ``latency_ms`` inside."""
        toxic = self.add_toxic(name, "latency", {"latency": latency_ms}, stream=stream)
        try:
            yield
        finally:
            self.remove_toxic(name, toxic)
