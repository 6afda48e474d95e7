"""The worker's egress policy: which addresses agents' webhooks and provider URLs may reach,
checked on the address a name resolves to, once, at connect time."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from stimm.egress import EgressPolicy, EgressRefused, EgressTransport
from stimm.schema import ProviderSpec
from worker.providers.registry import build_llm, build_stt

pytestmark = pytest.mark.unit


class FakeDns:
    """``socket.getaddrinfo`` answering from ``answers`` (host -> addresses), noting each ask."""

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def __setitem__(self, host: str, addresses: list[str]) -> None:
        self.answers[host] = addresses

    def getaddrinfo(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.asked.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in self.answers[host]
        ]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_metadata_and_link_local_literals_are_refused_even_when_allowed(url: str) -> None:
    policy = EgressPolicy.parse("0.0.0.0/0, ::/0")
    with pytest.raises(EgressRefused, match="link-local or metadata"):
        policy.check_url(url)


def test_a_name_resolving_to_the_metadata_address_is_refused(dns: FakeDns) -> None:
    dns["metadata.attacker.example"] = ["169.254.169.254"]
    with pytest.raises(EgressRefused, match="metadata"):
        EgressPolicy().check_url("https://metadata.attacker.example/v1")


def test_a_name_with_one_private_answer_among_public_ones_is_refused(
    dns: FakeDns,
) -> None:
    dns["mixed.example"] = ["93.184.216.34", "10.1.2.3"]
    with pytest.raises(EgressRefused, match="private"):
        EgressPolicy().check_url("https://mixed.example/")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/v1", "http://10.0.0.5/", "http://[::1]/", "http://[fd12::1]/"]
)
def test_private_addresses_are_refused_by_default_and_allowed_by_the_setting(url: str) -> None:
    with pytest.raises(EgressRefused, match="STIMM_EGRESS_ALLOW"):
        EgressPolicy().check_url(url)
    EgressPolicy.parse("127.0.0.0/8, ::1, 10.0.0.0/8, fd00::/8").check_url(url)


def test_an_allowed_host_name_may_resolve_to_a_private_address(dns: FakeDns) -> None:
    dns["kokoro"] = ["172.18.0.7"]
    with pytest.raises(EgressRefused):
        EgressPolicy().check_url("http://kokoro:8880/v1")
    EgressPolicy.parse("kokoro").check_url("http://kokoro:8880/v1")


def test_public_names_pass(dns: FakeDns) -> None:
    dns["api.openai.com"] = ["162.159.140.245"]
    EgressPolicy().check_url("https://api.openai.com/v1")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO", "javascript:alert(1)"]
)
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(EgressRefused, match="scheme"):
        EgressPolicy.parse("0.0.0.0/0").check_url(url)


async def test_the_transport_connects_to_the_address_it_checked(
    dns: FakeDns,
) -> None:
    """One resolution, then the request goes to that address: a second DNS answer (rebinding
    to the metadata address) is never asked for."""
    dns["hooks.example"] = ["93.184.216.34"]
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    transport = EgressTransport(EgressPolicy(), httpx.MockTransport(answer))
    async with httpx.AsyncClient(transport=transport) as client:
        resp = await client.post("https://hooks.example/book", json={})
        dns["hooks.example"] = ["169.254.169.254"]  # rebinding: the next answer is refused
        with pytest.raises(EgressRefused):
            await client.post("https://hooks.example/book", json={})
    assert resp.json() == {"ok": True}
    assert [r.url.host for r in seen] == ["93.184.216.34"]
    assert seen[0].headers["host"] == "hooks.example"
    assert seen[0].extensions["sni_hostname"] == "hooks.example"  # TLS checks the name
    assert dns.asked == ["hooks.example", "hooks.example"]  # once per request


def test_a_provider_url_outside_the_policy_is_refused_when_the_session_is_built(
    dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STIMM_EGRESS_ALLOW", raising=False)
    dns["llm.attacker.example"] = ["169.254.169.254"]
    spec = ProviderSpec(provider="openai", options={"base_url": "http://llm.attacker.example/v1"})
    with pytest.raises(EgressRefused, match="metadata"):
        build_llm(spec)
    stt = ProviderSpec(provider="deepgram", options={"base_url": "ws://127.0.0.1:9/v1/listen"})
    with pytest.raises(EgressRefused, match="private"):
        build_stt(stt, language="en")
