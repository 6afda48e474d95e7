"""Sessions per worker on this machine: ramp concurrent callers until p95 passes the SLO.

Two workers run the same providers (offline Whisper STT, scripted OpenAI-compatible LLM, Piper
TTS, Silero VAD) on the same local stack, one after the other:

- ``stimm``: the Stimm worker (``stimm worker``) with its pool settings — a process per job,
  prewarmed job processes, load from session slots (its latency and CPU guards are off here:
  the ramp measures where they should sit); sessions requested through the control plane
  (dispatch verified and retried);
- ``plain``: a minimal livekit-agents worker with the framework's defaults (CPU-average load,
  threshold 0.7, default prewarm), dispatched through the LiveKit API directly.

For each level of concurrent callers every caller waits for the greeting, then asks
``--turns`` questions; the figure is end of the caller's speech → first agent audio, as the
caller hears it. A level passes when every caller was answered and the p95 is within the SLO.
It prints, per worker: max sessions, RSS (PSS) and CPU per session at that level, and the
ratio; figures also go to bench/results/capacity.json. Before the ramp it measures the job
executor options: a job process's start (import + prewarm) and its RSS, against a job thread.

    .venv/bin/python bench/capacity.py [--slo 5.0] [--levels 1,2,3,4,6,8] [--turns 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.plain_worker import open_room  # noqa: E402
from bench.stats import pct  # noqa: E402
from stimm.stack import LocalStack, ManagedProcess, StackOptions  # noqa: E402
from stimm.stack.process import free_port  # noqa: E402
from tests.fakes.openai_server import serve_in_process  # noqa: E402

PLAIN_AGENT = "plain-bench"
GREETING = "Hello, this is the museum desk. How can I help you?"
INSTRUCTIONS = "You answer questions about the museum in one short sentence."
QUESTIONS = ["When is the museum open?", "Is the museum open on Sunday?"]


# -- the plain worker (run as a subprocess of this script) ---------------------------------------


def plain_prewarm(proc: Any) -> None:
    from livekit.plugins import silero

    from worker.providers import PiperTTS, WhisperSTT

    proc.userdata["vad"] = silero.VAD.load()
    WhisperSTT.load()
    PiperTTS.load()


async def plain_entrypoint(ctx: Any) -> None:
    from livekit.agents import Agent, AgentSession
    from livekit.plugins import openai

    from worker.providers import PiperTTS, WhisperSTT

    session: AgentSession[None] = AgentSession(
        vad=ctx.proc.userdata["vad"],
        stt=WhisperSTT(),
        llm=openai.LLM(model="scripted", base_url=os.environ["BENCH_LLM_URL"], api_key="bench"),
        tts=PiperTTS(),
    )
    await session.start(agent=Agent(instructions=INSTRUCTIONS), room=ctx.room)
    session.say(GREETING)


def run_plain_worker(llm_url: str) -> None:
    """A minimal livekit-agents worker: framework defaults, the same providers as Stimm.

    Job processes are forked from a server process, so the functions are module-level.
    """
    from livekit.agents import AgentServer, cli

    os.environ["BENCH_LLM_URL"] = llm_url
    server = AgentServer(setup_fnc=plain_prewarm, port=free_port())
    server.rtc_session(plain_entrypoint, agent_name=PLAIN_AGENT)
    sys.argv = ["plain-worker", "start"]
    cli.run_app(server)


# -- measuring -----------------------------------------------------------------------------------


class TreeSampler:
    """CPU seconds and peak memory of a process and its children, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu_start = self.cpu_seconds()

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            rss = pss = 0
            for p in self.tree():
                try:
                    info = p.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)

    def __enter__(self) -> TreeSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.wall_s = time.monotonic() - self._started
        self.cpu_s = self.cpu_seconds() - self._cpu_start


@dataclass
class Level:
    sessions: int
    answered: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_cores_per_session: float = 0.0
    rss_mb_per_session: float = 0.0
    pss_mb_per_session: float = 0.0

    @property
    def p95_ms(self) -> float | None:
        return pct(self.latencies_ms, 0.95) if self.latencies_ms else None

    def passed(self, slo_ms: float) -> bool:
        p95 = self.p95_ms
        return self.answered == self.sessions and p95 is not None and p95 <= slo_ms

    def as_dict(self) -> dict[str, Any]:
        return {
            "sessions": self.sessions,
            "answered": self.answered,
            "turns": len(self.latencies_ms),
            "p50_ms": round(statistics.median(self.latencies_ms), 1) if self.latencies_ms else None,
            "p95_ms": round(self.p95_ms, 1) if self.p95_ms is not None else None,
            "cpu_cores_per_session": round(self.cpu_cores_per_session, 3),
            "rss_mb_per_session": round(self.rss_mb_per_session, 1),
            "pss_mb_per_session": round(self.pss_mb_per_session, 1),
            "errors": self.errors[:5],
        }


async def converse(url: str, token: str, turns: int, level: Level) -> None:
    from tests.support.audio import synthesize
    from tests.support.caller import Caller

    caller = Caller()
    try:
        await caller.join(url, token)
        await caller.next_utterance(timeout=60)  # greeting
        level.answered += 1
        for i in range(turns):
            ended = await caller.say(synthesize(QUESTIONS[i % len(QUESTIONS)]))
            heard = await caller.next_utterance(timeout=30)
            level.latencies_ms.append((heard.first_audio_at - ended) * 1000)
    except (TimeoutError, httpx.HTTPError) as e:
        level.errors.append(f"{type(e).__name__}: {e}")
    finally:
        await caller.leave()


async def stimm_session(
    stack: LocalStack, http: httpx.AsyncClient, agent_id: str
) -> tuple[str, str]:
    resp = await http.post("/api/sessions", json={"agent_id": agent_id})
    if resp.status_code != 201:
        raise httpx.HTTPError(f"session refused: {resp.status_code} {resp.text[:200]}")
    body = resp.json()
    return body["livekit_url"], body["token"]


async def run_level(
    kind: str, stack: LocalStack, worker_pid: int, sessions: int, turns: int, agent_id: str
) -> Level:
    level = Level(sessions)
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
    ) as http:

        async def one(n: int) -> None:
            try:
                if kind == "stimm":
                    url, token = await stimm_session(stack, http, agent_id)
                else:
                    url, token = await open_room(stack, PLAIN_AGENT)
            except httpx.HTTPError as e:
                level.errors.append(str(e))
                return
            await converse(url, token, turns, level)

        with TreeSampler(worker_pid) as sampler:
            await asyncio.gather(*(one(n) for n in range(sessions)))
    level.cpu_cores_per_session = sampler.cpu_s / sampler.wall_s / sessions
    level.rss_mb_per_session = sampler.peak_rss / 2**20 / sessions
    level.pss_mb_per_session = sampler.peak_pss / 2**20 / sessions
    return level


async def ramp(
    kind: str, stack: LocalStack, worker_pid: int, args: argparse.Namespace, agent_id: str
) -> dict[str, Any]:
    levels: list[Level] = []
    best: Level | None = None
    for n in args.levels:
        level = await run_level(kind, stack, worker_pid, n, args.turns, agent_id)
        levels.append(level)
        print(f"  {kind:5s} {n:2d} sessions: {json.dumps(level.as_dict())}", flush=True)
        if not level.passed(args.slo * 1000):
            break
        best = level
        await asyncio.sleep(3)  # let rooms close before the next level
    return {
        "max_sessions": best.sessions if best else 0,
        "at_max": best.as_dict() if best else None,
        "levels": [lv.as_dict() for lv in levels],
    }


def measure_executor() -> dict[str, Any]:
    """A job process's start (import + prewarm) and RSS, against a second prewarm in-process
    (what a job thread adds: the models are loaded once per process)."""
    script = (
        "import time, psutil\n"
        "t0 = time.perf_counter()\n"
        "import worker.main as m\n"
        "t1 = time.perf_counter()\n"
        "class P: userdata = {}\n"
        "m.prewarm(P())\n"
        "t2 = time.perf_counter()\n"
        "rss1 = psutil.Process().memory_info().rss\n"
        "m.prewarm(P())\n"
        "t3 = time.perf_counter()\n"
        "rss2 = psutil.Process().memory_info().rss\n"
        "print(t1 - t0, t2 - t1, rss1, t3 - t2, rss2 - rss1)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    ).stdout.split()
    imp, prewarm, rss, thread_s, thread_rss = map(float, out[-5:])
    return {
        "process": {
            "cold_start_s": round(imp + prewarm, 2),
            "import_s": round(imp, 2),
            "prewarm_s": round(prewarm, 2),
            "rss_mb": round(rss / 2**20),
        },
        "thread": {"start_s": round(thread_s, 2), "rss_mb_added": round(thread_rss / 2**20)},
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    print("executor: measuring a job process against a job thread ...", flush=True)
    executor = measure_executor()
    print(f"  {json.dumps(executor)}", flush=True)

    run_dir = Path(args.run_dir)
    shutil.rmtree(run_dir / "stack", ignore_errors=True)  # a fresh database and bootstrap key
    with serve_in_process(
        run_dir / "logs", reply="The museum is open every Sunday afternoon."
    ) as llm_url:
        results = await compare(args, run_dir, llm_url)

    s, p = results["stimm"]["max_sessions"], results["plain"]["max_sessions"]
    return {
        "benchmark": "capacity",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        },
        "providers": {
            "stt": "local whisper tiny.en",
            "llm": "scripted local OpenAI-compatible",
            "tts": "local piper en_US-joe-medium",
            "vad": "silero",
        },
        "slo_p95_s": args.slo,
        "turns_per_session": args.turns,
        "executor": executor,
        "stimm": results["stimm"],
        "plain": results["plain"],
        "ratio_max_sessions": round(s / p, 2) if p else None,
    }


async def compare(args: argparse.Namespace, run_dir: Path, llm_url: str) -> dict[str, Any]:
    """Ramp callers on a Stimm worker, then on a plain livekit-agents worker, on one stack."""
    from stimm.stack.postgres import ensure_database

    database_url = ensure_database("stimm_bench_capacity", fresh=True) if args.postgres else None
    stack = LocalStack(
        StackOptions(
            run_dir=run_dir / "stack",
            database_url=database_url,
            workers=0,
            worker_env={
                "STIMM_WORKER_MAX_SESSIONS": str(max(args.levels)),
                "STIMM_WORKER_IDLE_PROCESSES": str(args.idle),
                # the ramp itself finds where callers' p95 passes the SLO, so the worker's own
                # latency guard would only cut it short; CPU is measured here, not limited
                "STIMM_WORKER_LATENCY_SLO": "0",
                "STIMM_WORKER_CPU_LIMIT": "0",
            },
        )
    )
    results: dict[str, Any] = {}
    plain: ManagedProcess | None = None
    try:
        stack.start()
        async with httpx.AsyncClient(
            base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
        ) as http:
            agent = await http.post(
                "/api/agents",
                json={
                    "name": "Capacity bench",
                    "instructions": INSTRUCTIONS,
                    "greeting": GREETING,
                    "stt": {"provider": "local"},
                    "llm": {
                        "provider": "openai",
                        "model": "scripted",
                        "options": {"base_url": llm_url},
                    },
                    "tts": {"provider": "local"},
                },
            )
            agent.raise_for_status()
            agent_id = agent.json()["id"]

        print(f"stimm worker (SLO p95 <= {args.slo:g} s):", flush=True)
        worker = stack.add_worker()
        await asyncio.sleep(args.settle)
        assert worker.pid is not None
        results["stimm"] = await ramp("stimm", stack, worker.pid, args, agent_id)
        worker.stop()

        print("plain livekit-agents worker (framework defaults):", flush=True)
        plain = ManagedProcess(
            "plain-worker",
            [sys.executable, str(Path(__file__).resolve()), "--plain-worker", llm_url],
            log_dir=run_dir / "logs",
            env=stack.service_env(),
            cwd=ROOT,
        )
        plain.start()
        plain.wait_ready(lambda: "registered worker" in plain.log_tail(400), timeout=120)
        await asyncio.sleep(args.settle)
        assert plain.pid is not None
        results["plain"] = await ramp("plain", stack, plain.pid, args, agent_id)
    finally:
        if plain is not None:
            plain.stop()
        stack.stop()
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--slo",
        type=float,
        default=5.0,
        help="p95 seconds (default 5.0: one offline Whisper/Piper session alone is ~3 s here)",
    )
    parser.add_argument(
        "--levels",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 2, 3, 4, 6, 8],
        help="concurrent callers per step",
    )
    parser.add_argument("--turns", type=int, default=2, help="questions per caller")
    parser.add_argument("--idle", type=int, default=4, help="Stimm prewarmed job processes")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after a worker starts")
    parser.add_argument("--postgres", action="store_true", help="Postgres instead of SQLite")
    parser.add_argument(
        "--run-dir", default=str(ROOT / ".stimm" / "bench-capacity"), help="logs and data"
    )
    parser.add_argument("--plain-worker", metavar="LLM_URL", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    cli_args = parse_args()
    if cli_args.plain_worker:
        run_plain_worker(cli_args.plain_worker)
        sys.exit(0)
    report = asyncio.run(main(cli_args))
    print(json.dumps({k: report[k] for k in ("executor", "ratio_max_sessions")}, indent=2))
    s, p = report["stimm"], report["plain"]
    for name, r in (("stimm", s), ("plain", p)):
        at = r["at_max"] or {}
        print(
            f"{name:5s}: max sessions {r['max_sessions']} (p95 {at.get('p95_ms')} ms), "
            f"RSS {at.get('rss_mb_per_session')} MB/session (PSS {at.get('pss_mb_per_session')}), "
            f"CPU {at.get('cpu_cores_per_session')} cores/session"
        )
    print(f"ratio stimm/plain max sessions: {report['ratio_max_sessions']}")
    out = ROOT / "bench" / "results" / "capacity.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
