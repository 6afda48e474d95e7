"""The worker's status server: ``/live``, ``/ready`` (503 while draining or unregistered) and
``/status`` (the heartbeat as JSON), on ``STIMM_WORKER_STATUS_PORT``, for orchestrators."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

logger = logging.getLogger("stimm.worker")


class StatusServer:
    """A small aiohttp server answering from callbacks.

    Args:
        host: Address to bind.
        port: Port to bind; 0 picks a free one (``port`` tells which once started).
        not_ready: Why the worker must get no traffic now, or ``None`` when it is ready.
        status: The worker's status as a JSON document.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        not_ready: Callable[[], str | None],
        status: Callable[[], str],
    ) -> None:
        self.host = host
        self.port = port
        self._not_ready = not_ready
        self._status = status
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.add_routes(
            [
                web.get("/live", self._live),
                web.get("/ready", self._ready),
                web.get("/status", self._status_json),
            ]
        )
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        if runner.addresses:
            self.port = int(runner.addresses[0][1])
        logger.info("worker status on port %d (/live, /ready, /status)", self.port)

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _live(self, _: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _ready(self, _: web.Request) -> web.Response:
        if (reason := self._not_ready()) is not None:
            return web.Response(status=503, text=reason)
        return web.Response(text="OK")

    async def _status_json(self, _: web.Request) -> web.Response:
        return web.Response(text=self._status(), content_type="application/json")
