"""What an MCP server offers, so the console can show an agent's MCP tools before a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
from fastapi import APIRouter, HTTPException, status
from mcp import ClientSession
from mcp.client._transport import TransportStreams
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel

from stimm.schema import McpServerTool

router = APIRouter(prefix="/mcp", tags=["agents"])


class McpToolInfo(BaseModel):
    name: str
    description: str | None


class McpTools(BaseModel):
    tools: list[McpToolInfo]


@asynccontextmanager
async def _streams(server: McpServerTool) -> AsyncIterator[TransportStreams]:
    if server.transport == "sse":
        async with sse_client(
            url=server.url, headers=server.headers, timeout=server.timeout_s
        ) as streams:
            yield streams
        return
    async with (
        httpx2.AsyncClient(headers=server.headers, timeout=server.timeout_s) as http,
        streamable_http_client(url=server.url, http_client=http) as streams,
    ):
        yield streams


async def _list_tools(server: McpServerTool) -> list[McpToolInfo]:
    async with _streams(server) as streams, ClientSession(streams[0], streams[1]) as client:
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


@router.post("/tools")
async def list_mcp_tools(server: McpServerTool) -> McpTools:
    """Connect to an agent's MCP server as the worker will and list the tools it offers."""
    try:
        async with asyncio.timeout(server.timeout_s):
            tools = await _list_tools(server)
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
