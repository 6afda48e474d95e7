"""The worker's shared models: one inference process serves Whisper and Piper to every job.

livekit-agents runs registered ``InferenceRunner`` classes in one inference process per worker
(the way its turn detector ran); a job asks it through
``get_job_context().inference_executor.do_inference(method, data)`` and the worker's main process
relays the request. The offline engines register their runners here
(``worker.providers.local_stt.WhisperRunner``, ``worker.providers.local_tts.PiperRunner``), so a
job process loads neither model: it keeps Silero VAD (small, per job) and the session.

livekit-agents 1.8.9 starts that process once and never again: when it dies, the requests in
flight wait forever and every later one fails. ``SharedInference`` wraps it: it fails the
requests the dead process had, starts a new one, and holds new requests until it is ready, so a
crash costs the turns in flight and nothing after. ``install`` puts it in the ``AgentServer``'s
place of livekit's executor when the worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing as mp
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self

from livekit.agents import AgentServer, get_job_context
from livekit.agents.inference_runner import _InferenceRunner, _RunnersDict
from livekit.agents.ipc.inference_proc_executor import InferenceProcExecutor

logger = logging.getLogger("stimm.worker")

INITIALIZE_TIMEOUT_S = 300.0
"""How long the inference process may take to load its models (livekit's own figure)."""

RESTART_BACKOFF_S = (0.0, 1.0, 2.0, 5.0)
"""Waits before successive attempts to start a replacement process (the last one repeats)."""

_shared = False


class InferenceUnavailable(RuntimeError):
    """The inference process died with the request in flight, or could not be started."""


def serve_from_inference_process(enabled: bool = True) -> None:
    """Make this job process's Whisper and Piper ask the worker's inference process.

    Called by the Stimm worker's prewarm; anything else (tests, benchmarks, a plain
    livekit-agents worker) keeps loading the models in its own process.
    """
    global _shared
    _shared = enabled


def shared_models() -> bool:
    """Whether the offline engines of this process go through the inference process."""
    return _shared


def preload_models() -> bool:
    """Whether the inference process loads Whisper and Piper as it starts
    (``STIMM_WORKER_PRELOAD_MODELS``, on by default) or at the first call that uses them: a
    pool whose agents all use hosted speech providers turns it off and never holds them."""
    value = os.environ.get("STIMM_WORKER_PRELOAD_MODELS", "1").strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"STIMM_WORKER_PRELOAD_MODELS must be 1 or 0, got {value!r}")
    return value in ("1", "true", "yes")


def register(*runners: type[_InferenceRunner]) -> None:
    """Register inference runners with livekit-agents (main thread, before the server runs)."""
    for runner in runners:
        if runner.INFERENCE_METHOD not in _InferenceRunner.registered_runners:
            _InferenceRunner.register_runner(runner)


async def infer(
    method: str, header: dict[str, Any], body: bytes = b""
) -> tuple[dict[str, Any], bytes]:
    """Run ``method`` in the worker's inference process, from a job.

    Raises:
        InferenceUnavailable: The request failed there or the process died meanwhile.
    """
    executor = get_job_context().inference_executor
    try:
        reply = await executor.do_inference(method, pack(header, body))
    except RuntimeError as e:  # livekit's relay turns every failure into RuntimeError(message)
        raise InferenceUnavailable(str(e)) from e
    if reply is None:
        raise InferenceUnavailable(f"{method}: empty reply")
    return unpack(reply)


def pack(header: dict[str, Any], body: bytes = b"") -> bytes:
    """One request or reply: a length-prefixed JSON header, then raw bytes (PCM)."""
    head = json.dumps(header).encode()
    return len(head).to_bytes(4, "big") + head + body


def unpack(data: bytes) -> tuple[dict[str, Any], bytes]:
    """The header and the bytes of ``pack``."""
    size = int.from_bytes(data[:4], "big")
    header: dict[str, Any] = json.loads(data[4 : 4 + size])
    return header, data[4 + size :]


@dataclass
class _Generation:
    executor: InferenceProcExecutor
    exited: asyncio.Future[None] = field(default_factory=asyncio.Future)


class SharedInference:
    """livekit's ``InferenceProcExecutor``, replaced by a fresh one whenever it dies.

    It has the executor's interface as the ``AgentServer`` and its job executors use it
    (``do_inference``, ``is_alive``, ``aclose``).

    Args:
        first: A started, initialized executor (the one the ``AgentServer`` made).
        runners: The runners a new process serves (livekit's registered ones).
        mp_context: The multiprocessing context new processes start in.
        restart: Whether a process that died now is replaced (not while the worker drains:
            a signal to the worker's process group stops the inference process too).
    """

    def __init__(
        self,
        first: InferenceProcExecutor,
        runners: _RunnersDict,
        *,
        mp_context: str = "forkserver",
        restart: Callable[[], bool] = lambda: True,
    ) -> None:
        self._runners = runners
        self._restart = restart
        self._mp_context = mp_context
        self._closing = False
        self._starting: InferenceProcExecutor | None = None
        self._ready = asyncio.Event()
        self._generation = self._watch(first)
        self._ready.set()
        self.restarts = 0

    @classmethod
    async def launch(cls, runners: _RunnersDict, *, mp_context: str = "forkserver") -> Self:
        """Start an inference process serving ``runners`` and supervise it."""
        first = _executor(runners, mp_context)
        await first.start()
        await first.initialize()
        return cls(first, runners, mp_context=mp_context)

    @property
    def pid(self) -> int | None:
        """The pid of the current inference process."""
        return self._generation.executor.pid

    def is_alive(self) -> bool:
        return self._ready.is_set() and self._generation.executor.is_alive()

    async def do_inference(self, method: str, data: bytes) -> bytes | None:
        """Run one request; fails (``InferenceUnavailable``) only if its process dies first."""
        if self._closing:
            raise InferenceUnavailable("the inference process is stopped")
        try:
            await asyncio.wait_for(self._ready.wait(), INITIALIZE_TIMEOUT_S)
        except TimeoutError as e:
            raise InferenceUnavailable("the inference process is not running") from e
        generation = self._generation
        request = asyncio.ensure_future(generation.executor.do_inference(method, data))
        waiters: set[asyncio.Future[Any]] = {request, generation.exited}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if request.done():
            return request.result()
        request.cancel()
        raise InferenceUnavailable(f"the inference process died during {method}")

    async def aclose(self) -> None:
        self._closing = True
        if self._starting is not None:  # a replacement still loading: not needed any more
            with contextlib.suppress(Exception):
                await self._starting.kill()
        await self._generation.executor.aclose()

    def _watch(self, executor: InferenceProcExecutor) -> _Generation:
        generation = _Generation(executor)
        logger.info("inference process %s ready", executor.pid)
        self._task = asyncio.create_task(
            self._supervise(generation), name="stimm_inference_supervisor"
        )
        return generation

    async def _supervise(self, generation: _Generation) -> None:
        await generation.executor.join()
        generation.exited.set_result(None)
        if self._closing or not self._restart():
            self._closing = True
            logger.info("inference process %s exited; not replaced", generation.executor.pid)
            return
        self._ready.clear()
        logger.error(
            "inference process %s exited (code %s); starting another",
            generation.executor.pid,
            generation.executor.exitcode,
        )
        attempt = 0
        while not self._closing:
            await asyncio.sleep(RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)])
            attempt += 1
            executor = self._starting = _executor(self._runners, self._mp_context)
            started = time.perf_counter()
            try:
                await executor.start()
                await executor.initialize()
            except Exception:
                if not self._closing:
                    logger.exception("inference process did not start")
                with contextlib.suppress(Exception):
                    await executor.aclose()
                continue
            finally:
                self._starting = None
            if self._closing:
                await executor.aclose()
                return
            logger.info("inference process restarted in %.1fs", time.perf_counter() - started)
            self.restarts += 1
            self._generation = self._watch(executor)
            self._ready.set()
            return


def _executor(runners: _RunnersDict, mp_context: str) -> InferenceProcExecutor:
    # livekit's own settings for its inference process (AgentServer.run)
    return InferenceProcExecutor(
        runners=runners,
        initialize_timeout=INITIALIZE_TIMEOUT_S,
        close_timeout=5,
        memory_warn_mb=2000,
        memory_limit_mb=0,
        ping_interval=5,
        ping_timeout=60,
        high_ping_threshold=2.5,
        mp_ctx=mp.get_context(mp_context),
        loop=asyncio.get_running_loop(),
        http_proxy=None,
    )


def install(server: AgentServer) -> SharedInference | None:
    """Put a ``SharedInference`` in place of the executor the started ``server`` made.

    livekit-agents 1.8.9 builds its executor inside ``AgentServer.run`` and hands it to the
    process pool and each job executor; it has no option to supply one, so the references are
    replaced here, on ``worker_started`` (before the worker registers, so before any job).
    """
    first: Any = getattr(server, "_inference_executor", None)
    if not isinstance(first, InferenceProcExecutor):
        return None
    shared = SharedInference(
        first, _InferenceRunner.registered_runners, restart=lambda: not server.draining
    )
    server._inference_executor = shared  # type: ignore[assignment]
    pool: Any = server._proc_pool
    pool._inf_executor = shared
    for proc in pool.processes:
        proc._inference_executor = shared
    return shared
