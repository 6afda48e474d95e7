"""What an MCP server offers, so the console can show an agent's MCP tools before a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastapi import APIRouter, HTTPException, status
from mcp import ClientSession
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from control_plane import credentials
from control_plane.api.deps import DbDep, SecretBoxDep
from stimm.egress import EgressPolicy, EgressRefused
from stimm.schema import McpServerTool

router = APIRouter(prefix="/mcp", tags=["agents"])
UPSTREAM_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"description": "The MCP server could not be reached or used"}
}


class McpToolInfo(BaseModel):
    name: str
    description: str | None


class McpTools(BaseModel):
    tools: list[McpToolInfo]


@asynccontextmanager
async def _streams(
    server: McpServerTool, headers: dict[str, str]
) -> AsyncIterator[TransportStreams]:
    if server.transport == "sse":
        async with sse_client(url=server.url, headers=headers, timeout=server.timeout_s) as streams:
            yield streams
        return
    async with (
        httpx2.AsyncClient(headers=headers, timeout=server.timeout_s) as http,
        streamable_http_client(url=server.url, http_client=http) as streams,
    ):
        yield streams


async def _list_tools(server: McpServerTool, headers: dict[str, str]) -> list[McpToolInfo]:
    async with (
        _streams(server, headers) as streams,
        ClientSession(streams[0], streams[1]) as client,
    ):
        await client.initialize()
        listed = await client.list_tools()
    allowed = set(server.allowed_tools) if server.allowed_tools is not None else None
    return [
        McpToolInfo(name=t.name, description=t.description)
        for t in listed.tools
        if allowed is None or t.name in allowed
    ]


def _reason(error: BaseException) -> str:
    # anyio task groups wrap the transport's error; the innermost one says what happened
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return str(error) or type(error).__name__


@router.post("/tools", responses=UPSTREAM_FAILED)
async def list_mcp_tools(db: DbDep, box: SecretBoxDep, server: McpServerTool) -> McpTools:
    """Connect to an agent's MCP server as the worker will and list the tools it offers.

    Header values may be ``{"secret": NAME}`` references (what agents return); the request goes
    only where the workers' egress policy (``STIMM_EGRESS_ALLOW``) lets agents' requests go.
    """
    refs = {v.secret for v in server.headers.values() if not isinstance(v, str)}
    values = await credentials.decrypt_secrets(db, box, refs)
    if missing := refs - values.keys():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"No secret named {sorted(missing)[0]!r}"
        )
    headers = {k: v if isinstance(v, str) else values[v.secret] for k, v in server.headers.items()}
    try:
        await asyncio.to_thread(EgressPolicy.from_env().check_url, server.url)
    except EgressRefused as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from None
    try:
        async with asyncio.timeout(server.timeout_s):
            tools = await _list_tools(server, headers)
    except TimeoutError:
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"The MCP server at {server.url} did not answer within {server.timeout_s:g} s",
        ) from None
    except Exception as e:  # noqa: BLE001 - any transport or protocol failure is the server's
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"The MCP server at {server.url} could not be used: {_reason(e)}",
        ) from None
    return McpTools(tools=tools)
