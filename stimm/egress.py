"""Where a worker may send requests that an agent's config chose: webhooks and providers' URLs.

- Only ``http(s)`` (and ``ws(s)`` for providers that speak WebSockets).
- Link-local and cloud-metadata addresses are always refused.
- Any other non-public address (loopback, RFC 1918, ULA, CGNAT, ...) is refused unless
  ``STIMM_EGRESS_ALLOW`` lists it: comma-separated IP networks (``127.0.0.0/8``, ``::1``) or
  host names (``kokoro``, which then may resolve to a private address).

The check is made on the resolved address at connect time: ``EgressTransport`` resolves the
host once, checks every address, and connects to the checked one (TLS still verifies the host
name), so a DNS answer that changes between a check and the connection (rebinding) cannot
slip through.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

from stimm.tls import tls_context

ALLOW_ENV = "STIMM_EGRESS_ALLOW"
LOOPBACK = "127.0.0.0/8,::1"
"""The allowance of a stack whose servers all run on one machine (``stimm dev``, the tests)."""

HTTP_SCHEMES = frozenset({"http", "https"})
WEBSOCKET_SCHEMES = HTTP_SCHEMES | {"ws", "wss"}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_REFUSED: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.0.0/16",  # link-local, AWS/GCP/Azure metadata at 169.254.169.254
        "fe80::/10",  # IPv6 link-local
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "fd00:ec2::254/128",  # AWS metadata over IPv6
        "0.0.0.0/8",
        "::/128",
    )
)
"""Never reachable, whatever ``STIMM_EGRESS_ALLOW`` says."""


class EgressRefused(ValueError):
    """A request the egress policy does not let out; the message says why."""


def url_problem(url: str, schemes: Iterable[str] = HTTP_SCHEMES) -> str | None:
    """Why ``url`` is not an absolute URL of one of ``schemes``; ``None`` when it is."""
    allowed = sorted(schemes)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{url!r} is not a valid URL"
    if parts.scheme.lower() not in allowed:
        return f"URL scheme must be {' or '.join(allowed)}, not {parts.scheme or 'none'!r}"
    if not host:
        return f"{url!r} has no host"
    return None


def _address(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.split("%", 1)[0])  # drop an IPv6 zone
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    # ipaddress compares an address with a network of the other version bit by bit
    return any(ip.version == n.version and ip in n for n in networks)


@dataclass(frozen=True)
class EgressPolicy:
    """Which non-public destinations are allowed (public ones always are)."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, allow: str) -> EgressPolicy:
        """From ``STIMM_EGRESS_ALLOW``'s format: ``127.0.0.0/8, ::1, kokoro``."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    @classmethod
    def from_env(cls) -> EgressPolicy:
        return cls.parse(os.environ.get(ALLOW_ENV, ""))

    def check_address(self, host: str, address: str) -> None:
        """Raise ``EgressRefused`` unless ``host``, resolved to ``address``, may be reached."""
        ip = _address(address)
        if ip is None:
            raise EgressRefused(f"{host}: {address!r} is not an IP address")
        if _within(ip, ALWAYS_REFUSED):
            raise EgressRefused(f"{host} ({ip}) is a link-local or metadata address")
        if ip.is_global or host.lower().rstrip(".") in self.hosts:
            return
        if not _within(ip, self.networks):
            raise EgressRefused(
                f"{host} ({ip}) is a private address; list it in {ALLOW_ENV} to allow it"
            )

    def resolve_sync(self, host: str, port: int) -> str:
        """The address to connect to for ``host``, resolved once and checked.

        Raises:
            EgressRefused: If the host does not resolve, or any of its addresses is refused
                (a name that mixes public and private answers is refused as a whole).
        """
        if _address(host) is not None:
            self.check_address(host, host)
            return host
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as e:  # UnicodeError: not a valid (IDNA) host name
            raise EgressRefused(f"{host} does not resolve: {e}") from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise EgressRefused(f"{host} does not resolve")
        for address in addresses:
            self.check_address(host, address)
        return addresses[0]

    async def resolve(self, host: str, port: int) -> str:
        """``resolve_sync`` off the event loop."""
        return await asyncio.to_thread(self.resolve_sync, host, port)

    def check_url(self, url: str, schemes: Iterable[str] = HTTP_SCHEMES) -> None:
        """Raise ``EgressRefused`` unless ``url``'s scheme is allowed and its host (resolved
        now, blocking) may be reached."""
        problem = url_problem(url, schemes)
        if problem is not None:
            raise EgressRefused(problem)
        parts = urlsplit(url)
        assert parts.hostname is not None
        secure = parts.scheme.lower() in ("https", "wss")
        self.resolve_sync(parts.hostname, parts.port or (443 if secure else 80))


class EgressTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only where the policy allows.

    The host is resolved and checked here, then the request goes to the checked address with
    the original ``Host`` header and TLS server name: nothing resolves the name a second time.
    """

    def __init__(
        self, policy: EgressPolicy, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._policy = policy
        self._transport = transport or httpx.AsyncHTTPTransport(verify=tls_context())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        problem = url_problem(str(url))
        if problem is not None:
            raise EgressRefused(problem)
        port = url.port or (443 if url.scheme == "https" else 80)
        address = await self._policy.resolve(url.host, port)
        request.url = url.copy_with(host=address)
        request.extensions = {**request.extensions, "sni_hostname": url.host}
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._transport.aclose()


def egress_client(policy: EgressPolicy | None = None) -> httpx.AsyncClient:
    """An HTTP client for requests an agent's config chose (webhooks)."""
    return httpx.AsyncClient(transport=EgressTransport(policy or EgressPolicy.from_env()))
