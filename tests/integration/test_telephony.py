"""Phone numbers, call records and the worker's call registration, against real PostgreSQL and
a real livekit-server (which stores SIP trunks and dispatch rules; no livekit-sip needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from livekit import api

from control_plane.core.config import Settings
from sip import provisioning
from stimm.stack import LocalStack, StackOptions
from tests.integration.control_plane_env import (
    WORKER_HEADERS,
    agent_body,
    app_client,
    make_settings,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Redis and livekit-server (the local stack's, with no worker)."""
    stack = LocalStack(StackOptions(run_dir=tmp_path_factory.mktemp("telephony"), workers=0))
    stack._start_redis()
    stack._start_livekit()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def settings(database_url: str, livekit: LocalStack) -> Settings:
    return make_settings(
        database_url,
        livekit_url=livekit.livekit_url,
        livekit_api_key=livekit.options.api_key,
        livekit_api_secret=livekit.options.api_secret,
    )


@pytest_asyncio.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(settings) as (_, http):
        yield http


@pytest_asyncio.fixture
async def lk(livekit: LocalStack) -> AsyncIterator[api.LiveKitAPI]:
    url = f"http://127.0.0.1:{livekit.options.livekit_port}"
    async with api.LiveKitAPI(url, livekit.options.api_key, livekit.options.api_secret) as lkapi:
        yield lkapi


async def create_agent(client: httpx.AsyncClient, name: str = "Receptionist") -> str:
    resp = await client.post("/api/agents", json=agent_body(name))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def sip_state(
    lk: api.LiveKitAPI, number: str
) -> tuple[list[api.SIPInboundTrunkInfo], list[api.SIPDispatchRuleInfo]]:
    trunks = (await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest())).items
    rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    name = f"stimm:{number}"
    return [t for t in trunks if t.name == name], [r for r in rules if r.name == name]


async def test_phone_number_routes_calls_to_its_agent_in_livekit(
    client: httpx.AsyncClient, lk: api.LiveKitAPI, database_url: str
) -> None:
    first, second = await create_agent(client, "First"), await create_agent(client, "Second")
    resp = await client.post(
        "/api/phone-numbers",
        json={
            "number": "+15550100",
            "agent_id": first,
            "allowed_addresses": ["127.0.0.1"],
            "auth_username": "carrier",
            "auth_password": "s3cret-passw0rd",
        },
    )
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["auth"] is True and "auth_password" not in created

    trunks, rules = await sip_state(lk, "+15550100")
    assert len(trunks) == 1 and len(rules) == 1
    # the digest password reaches LiveKit, but is stored encrypted, never as typed
    assert trunks[0].auth_username == "carrier" and trunks[0].auth_password == "s3cret-passw0rd"
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        stored = await conn.fetchval("SELECT auth_password FROM phone_number")
    finally:
        await conn.close()
    assert stored and "s3cret-passw0rd" not in stored
    assert list(trunks[0].numbers) == ["+15550100"]
    assert list(trunks[0].allowed_addresses) == ["127.0.0.1"]
    assert list(rules[0].trunk_ids) == [trunks[0].sip_trunk_id]
    dispatch = rules[0].room_config.agents[0]
    assert dispatch.agent_name == "stimm"
    assert json.loads(dispatch.metadata) == {"agent_id": first, "channel": "phone"}

    # the same number twice is a conflict, not a second trunk
    again = await client.post("/api/phone-numbers", json={"number": "+15550100", "agent_id": first})
    assert again.status_code == 409

    moved = await client.patch(f"/api/phone-numbers/{created['id']}", json={"agent_id": second})
    assert moved.status_code == 200, moved.text
    trunks_after, rules_after = await sip_state(lk, "+15550100")
    assert [t.sip_trunk_id for t in trunks_after] == [trunks[0].sip_trunk_id]
    assert json.loads(rules_after[0].room_config.agents[0].metadata)["agent_id"] == second

    listed = (await client.get("/api/phone-numbers")).json()
    assert [n["number"] for n in listed["items"]] == ["+15550100"]

    assert (await client.delete(f"/api/phone-numbers/{created['id']}")).status_code == 204
    assert await sip_state(lk, "+15550100") == ([], [])
    assert (await client.get(f"/api/phone-numbers/{created['id']}")).status_code == 404


async def test_provisioning_twice_changes_nothing(lk: api.LiveKitAPI) -> None:
    spec = provisioning.InboundNumber(number="+15550177", agent_id="agent-1")
    first = await provisioning.ensure_inbound_number(lk, spec)
    second = await provisioning.ensure_inbound_number(lk, spec)
    assert first == second
    trunks, rules = await sip_state(lk, "+15550177")
    assert len(trunks) == 1 and len(rules) == 1

    # a changed number is updated in place: same trunk and rule, new settings
    moved = provisioning.InboundNumber(
        number="+15550177", agent_id="agent-2", allowed_addresses=("10.0.0.0/8",)
    )
    assert await provisioning.ensure_inbound_number(lk, moved) == first
    trunks, rules = await sip_state(lk, "+15550177")
    assert [list(t.allowed_addresses) for t in trunks] == [["10.0.0.0/8"]]
    assert len(rules) == 1 and '"agent_id":"agent-2"' in rules[0].metadata
    assert await provisioning.remove_inbound_number(lk, "+15550177")
    assert not await provisioning.remove_inbound_number(lk, "+15550177")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"number": "not a number!", "agent_id": "x"}, 422),
        ({"number": "+15550101", "agent_id": "00000000-0000-0000-0000-000000000000"}, 404),
        ({"number": "+15550101", "agent_id": None, "auth_username": "only-user"}, 422),
    ],
)
async def test_bad_phone_numbers_are_refused_clearly(
    client: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    if "agent_id" in body and body["agent_id"] is None:
        body = {**body, "agent_id": await create_agent(client)}
    resp = await client.post("/api/phone-numbers", json=body)
    assert resp.status_code == status, resp.text


async def test_allowed_addresses_must_be_ips_or_ranges(
    client: httpx.AsyncClient, lk: api.LiveKitAPI
) -> None:
    agent_id = await create_agent(client)
    body = {"number": "+15550133", "agent_id": agent_id, "allowed_addresses": ["not-an-ip"]}
    resp = await client.post("/api/phone-numbers", json=body)
    assert resp.status_code == 422, resp.text
    assert "'not-an-ip' is not an IP address or CIDR range" in resp.text
    assert await sip_state(lk, "+15550133") == ([], [])
    listed = (await client.get("/api/phone-numbers")).json()["items"]
    assert "+15550133" not in [n["number"] for n in listed]

    ok = {**body, "allowed_addresses": ["203.0.113.5", "10.0.0.0/8", "2001:db8::/32"]}
    created = await client.post("/api/phone-numbers", json=ok)
    assert created.status_code == 201, created.text
    patched = await client.patch(
        f"/api/phone-numbers/{created.json()['id']}",
        json={"allowed_addresses": ["10.0.0.0/33"]},
    )
    assert patched.status_code == 422, patched.text
    assert "'10.0.0.0/33'" in patched.text
    trunks, _ = await sip_state(lk, "+15550133")
    assert list(trunks[0].allowed_addresses) == ok["allowed_addresses"]
    assert (await client.delete(f"/api/phone-numbers/{created.json()['id']}")).status_code == 204


async def test_worker_registers_a_dial_in_call_once(client: httpx.AsyncClient) -> None:
    agent_id = await create_agent(client)
    body = {
        "agent_id": agent_id,
        "room": "stimm-phone-_+15550999_abc",
        "channel": "phone",
        "caller": "+15550999",
        "callee": "+15550100",
        "sip_call_id": "call-1",
        "participant_identity": "sip_+15550999",
    }
    assert (await client.post("/api/worker/sessions", json=body)).status_code == 401
    first = await client.post("/api/worker/sessions", json=body, headers=WORKER_HEADERS)
    assert first.status_code == 201, first.text
    again = await client.post("/api/worker/sessions", json=body, headers=WORKER_HEADERS)
    assert again.json() == first.json()

    call = (await client.get(f"/api/calls/{first.json()['call_id']}")).json()
    assert call["session_id"] == first.json()["session_id"]
    assert (call["direction"], call["caller"], call["callee"]) == (
        "inbound",
        "+15550999",
        "+15550100",
    )
    assert call["channel"] == "phone" and call["status"] == "created" and call["turns"] == []

    # the worker's turns and outcome land on the call like on any session
    session_id = call["session_id"]
    turn = {"role": "user", "text": "Keypad input: 42"}
    posted = await client.post(
        f"/api/worker/sessions/{session_id}/turns", json=turn, headers=WORKER_HEADERS
    )
    assert posted.status_code == 201
    for status in ("active", "completed"):
        await client.post(
            f"/api/worker/sessions/{session_id}/events",
            json={"status": status},
            headers=WORKER_HEADERS,
        )
    call = (await client.get(f"/api/calls/{first.json()['call_id']}")).json()
    assert call["outcome"] == "completed"
    assert [t["text"] for t in call["turns"]] == ["Keypad input: 42"]

    unknown = await client.post(
        "/api/worker/sessions",
        json={**body, "agent_id": "00000000-0000-0000-0000-000000000000", "room": "r2"},
        headers=WORKER_HEADERS,
    )
    assert unknown.status_code == 404


async def test_transfer_leg_dials_only_a_live_phone_call_and_the_agents_targets(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings.telephony, "outbound_address", "")
    body = agent_body("Desk") | {"tools": [{"type": "warm_transfer", "target": "+15550177"}]}
    agent_id = (await client.post("/api/agents", json=body)).json()["id"]
    registered = await client.post(
        "/api/worker/sessions",
        json={"agent_id": agent_id, "room": "stimm-phone-warm", "caller": "+15550999"},
        headers=WORKER_HEADERS,
    )
    session_id = registered.json()["session_id"]
    path = f"/api/worker/sessions/{session_id}/transfer-legs"
    leg = {"target": "+15550177", "participant_identity": "transfer-colleague"}

    assert (await client.post(path, json=leg)).status_code == 401
    other = await client.post(path, json=leg | {"target": "+19005550000"}, headers=WORKER_HEADERS)
    assert other.status_code == 422, other.text
    assert "warm-transfer targets" in other.json()["detail"]
    unconfigured = await client.post(path, json=leg, headers=WORKER_HEADERS)
    assert unconfigured.status_code == 409
    assert "STIMM_SIP_OUTBOUND_ADDRESS" in unconfigured.json()["detail"]
    missing = await client.post(
        "/api/worker/sessions/00000000-0000-0000-0000-000000000000/transfer-legs",
        json=leg,
        headers=WORKER_HEADERS,
    )
    assert missing.status_code == 404

    for status in ("active", "completed"):
        await client.post(
            f"/api/worker/sessions/{session_id}/events",
            json={"status": status},
            headers=WORKER_HEADERS,
        )
    ended = await client.post(path, json=leg, headers=WORKER_HEADERS)
    assert ended.status_code == 409 and "not a live phone call" in ended.json()["detail"]


async def test_outbound_call_needs_configuration(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings.telephony, "outbound_address", "")  # STIMM_SIP_OUTBOUND_ADDRESS
    agent_id = await create_agent(client)
    resp = await client.post("/api/calls", json={"agent_id": agent_id, "to": "+15550123"})
    assert resp.status_code == 409
    assert "STIMM_SIP_OUTBOUND_ADDRESS" in resp.json()["detail"]


async def test_outbound_call_without_sip_service_fails_cleanly_and_is_recorded(
    client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # livekit-server answers, but no livekit-sip is running to place the call
    monkeypatch.setattr(settings.telephony, "outbound_address", "127.0.0.1:5999")
    agent_id = await create_agent(client, "Caller")
    resp = await client.post("/api/calls", json={"agent_id": agent_id, "to": "+15550123"})
    assert resp.status_code in (502, 503), resp.text
    calls = (await client.get("/api/calls", params={"agent_id": agent_id})).json()
    assert calls["count"] == 1
    call = calls["items"][0]
    assert call["direction"] == "outbound" and call["callee"] == "+15550123"
    assert call["status"] == "failed" and call["outcome"] in ("failed", "no-answer")
    assert call["failure_reason"]


async def test_unreachable_livekit_is_a_503_and_nothing_is_stored(database_url: str) -> None:
    async with app_client(make_settings(database_url)) as (_, http):
        agent_id = await create_agent(http)
        resp = await http.post(
            "/api/phone-numbers", json={"number": "+15550155", "agent_id": agent_id}
        )
        assert resp.status_code == 503, resp.text
        assert resp.headers.get("Retry-After") == "5"
        listed = (await http.get("/api/phone-numbers")).json()
        assert "+15550155" not in [n["number"] for n in listed["items"]]
