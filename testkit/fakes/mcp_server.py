"""A real MCP server (the ``mcp`` SDK over streamable HTTP) with one tool, in the caller's
event loop: what an agent's ``mcp`` tool entry points at in tests."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from stimm.stack.process import free_port

PLANETARIUM_HOURS = "The planetarium shows start at eleven and at three."


class FakeMcpServer:
    """Serves ``planetarium_hours``; records each call and the Authorization header it came with.

    Args:
        token: When set, requests without ``Authorization: Bearer <token>`` get a 401.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def _app(self) -> ASGIApp:
        mcp = MCPServer("museum-tools")

        @mcp.tool(description="When the planetarium's shows start on a given day.")
        def planetarium_hours(day: str) -> str:
            self.calls.append({"day": day})
            return PLANETARIUM_HOURS

        inner = mcp.streamable_http_app()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                auth = dict(scope["headers"]).get(b"authorization")
                self.authorizations.append(auth.decode() if auth else None)
                if self.token and auth != f"Bearer {self.token}".encode():
                    await send({"type": "http.response.start", "status": 401, "headers": []})
                    await send({"type": "http.response.body", "body": b"unauthorized"})
                    return
            await inner(scope, receive, send)

        return app

    async def __aenter__(self) -> FakeMcpServer:
        config = uvicorn.Config(self._app(), host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises why it could not start
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
