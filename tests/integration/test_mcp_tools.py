"""The console lists what an agent's MCP server offers through the control plane, which talks to
a real MCP server (the ``mcp`` SDK) as the worker will; failures are a clear 502."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from testkit.fakes.mcp_server import FakeMcpServer
from tests.integration.control_plane_env import (
    DATABASE_URL,
    app_client,
    closed_port_url,
    fresh_database,
    make_settings,
)

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="module")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with fresh_database(DATABASE_URL) as url, app_client(make_settings(url)) as (_, c):
        yield c


async def test_tools_of_an_mcp_server_are_listed(client: httpx.AsyncClient) -> None:
    async with FakeMcpServer(token="mcp-token") as server:
        resp = await client.post(
            "/api/mcp/tools",
            json={
                "type": "mcp",
                "name": "museum",
                "url": server.url,
                "headers": {"Authorization": "Bearer mcp-token"},
            },
        )
    assert resp.status_code == 200, resp.text
    [tool] = resp.json()["tools"]
    assert tool["name"] == "planetarium_hours"
    assert "planetarium" in tool["description"]
    assert "Bearer mcp-token" in server.authorizations


async def test_allowed_tools_filter_the_list(client: httpx.AsyncClient) -> None:
    async with FakeMcpServer() as server:
        resp = await client.post(
            "/api/mcp/tools",
            json={"name": "museum", "url": server.url, "allowed_tools": ["something_else"]},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tools": []}


async def test_unreachable_or_refusing_servers_are_a_clear_502(client: httpx.AsyncClient) -> None:
    down = await client.post(
        "/api/mcp/tools", json={"name": "x", "url": closed_port_url() + "/mcp"}
    )
    assert down.status_code == 502, down.text
    assert "could not be used" in down.json()["detail"]
    assert "connect" in down.json()["detail"].lower(), down.json()
    async with FakeMcpServer(token="right") as server:
        refused = await client.post("/api/mcp/tools", json={"name": "x", "url": server.url})
    assert refused.status_code == 502, refused.text
    assert "could not be used" in refused.json()["detail"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://", "gopher://x/mcp"])
async def test_urls_that_are_not_http_with_a_host_are_refused(
    client: httpx.AsyncClient, url: str
) -> None:
    resp = await client.post("/api/mcp/tools", json={"name": "x", "url": url})
    assert resp.status_code == 422
    assert resp.json()["detail"][0]["loc"][-1] == "url"


async def test_metadata_addresses_are_never_contacted(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/mcp/tools", json={"name": "x", "url": "http://169.254.169.254/mcp"}
    )
    assert resp.status_code == 422, resp.text
    assert "metadata" in resp.json()["detail"]


async def test_an_agents_mcp_header_is_a_secret_and_its_reference_works(
    client: httpx.AsyncClient,
) -> None:
    async with FakeMcpServer(token="mcp-token") as server:
        mcp = {"type": "mcp", "name": "museum", "url": server.url}
        body = {
            "name": "Guide",
            "instructions": "Help.",
            "llm": {"provider": "openai", "options": {"base_url": "https://llm.example/v1"}},
            "tools": [{**mcp, "headers": {"Authorization": "Bearer mcp-token"}}],
        }
        created = await client.post("/api/agents", json=body)
        assert created.status_code == 201, created.text
        assert "mcp-token" not in created.text
        [tool] = created.json()["tools"]
        # what the console holds and sends back: a reference, resolved by the control plane
        resp = await client.post("/api/mcp/tools", json=tool)
    assert resp.status_code == 200, resp.text
    assert [t["name"] for t in resp.json()["tools"]] == ["planetarium_hours"]
    assert server.authorizations[-1] == "Bearer mcp-token"
