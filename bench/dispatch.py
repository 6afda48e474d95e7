"""Session request → agent in the room, under a burst of concurrent requests.

A local stack with two Stimm workers whose free slots outnumber the burst, an agent on the
instant providers (streaming fakes of Deepgram and ElevenLabs, the scripted LLM: no model work),
and ``--rounds`` bursts of ``--burst`` simultaneous ``POST /api/sessions``. Each request's caller
joins the room it was given without a microphone and notes when the agent arrives. Then, for
comparison, the same bursts against a plain livekit-agents worker (``bench/plain_worker.py``,
rooms created and dispatched through the LiveKit API as livekit's docs do it).

Per worker kind and executor: dispatch p50/p95/p99/max (request sent → the LiveKit server let
the agent into the room: the participant's ``joined_at``, stamped by the server on this
machine's clock), the same seen by the caller (which also waits on the caller's own connection,
its WebRTC handshakes on the same 2 cores), the ``POST /api/sessions`` answer time alone,
dispatches lost (no agent within ``--timeout`` s), and rooms holding more than one agent
(counted from each caller's room after the burst settled). bench/results/dispatch.json. With
``--profile``, py-spy samples the control plane during the first executor's bursts: the
functions under ``create_session`` (the ``POST /api/sessions`` route) with their share of its
samples, in the same file (the collapsed stacks stay in the run folder, for a flame graph).

    .venv/bin/python bench/dispatch.py [--burst 20] [--rounds 3] [--executors process,thread]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from livekit import rtc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capacity import PLAIN_AGENT, agent_for, calls_ended, start_plain  # noqa: E402
from bench.plain_worker import GREETING, open_room  # noqa: E402
from bench.profile import Profile  # noqa: E402
from bench.roundtrip import INSTANT_REPLY, INSTANT_TTS_RATE, QUESTIONS  # noqa: E402
from bench.stats import machine, pct  # noqa: E402
from stimm.stack import LocalStack, StackOptions  # noqa: E402
from stimm.stack.postgres import ensure_database  # noqa: E402
from testkit.caller import Listener  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.fakes.speech_server import FakeSpeechServer, synthesized  # noqa: E402

WORKERS = 2


@dataclass
class Burst:
    dispatch_ms: list[float] = field(default_factory=list)
    seen_ms: list[float] = field(default_factory=list)
    request_ms: list[float] = field(default_factory=list)
    lost: int = 0
    refused: list[str] = field(default_factory=list)
    rooms_with_two_agents: int = 0

    def as_dict(self) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> float | None:
            return round(pct(values, q), 1) if values else None

        return {
            "requests": len(self.seen_ms) + self.lost + len(self.refused),
            "dispatched": len(self.seen_ms),
            "lost": self.lost,
            "refused": self.refused[:5],
            "rooms_with_two_agents": self.rooms_with_two_agents,
            "dispatch_p50_ms": (
                round(statistics.median(self.dispatch_ms), 1) if self.dispatch_ms else None
            ),
            "dispatch_p95_ms": ms(self.dispatch_ms, 0.95),
            "dispatch_p99_ms": ms(self.dispatch_ms, 0.99),
            "dispatch_max_ms": round(max(self.dispatch_ms), 1) if self.dispatch_ms else None,
            "request_p50_ms": (
                round(statistics.median(self.request_ms), 1) if self.request_ms else None
            ),
            "request_p99_ms": ms(self.request_ms, 0.99),
            "seen_by_caller_p50_ms": (
                round(statistics.median(self.seen_ms), 1) if self.seen_ms else None
            ),
            "seen_by_caller_p99_ms": ms(self.seen_ms, 0.99),
        }


def agents(room: rtc.Room) -> list[rtc.RemoteParticipant]:
    """The room's agent participants, as this caller sees them."""
    return [
        p
        for p in room.remote_participants.values()
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    ]


def agent_joined_at(room: rtc.Room) -> float | None:
    """When the LiveKit server let the room's agent in (its clock, this machine's): the
    caller's own view waits on the caller's connection too, and the callers here share the
    same 2 cores as everything else."""
    joined = [p.joined_at.timestamp() for p in agents(room) if p.joined_at is not None]
    return min(joined, default=None)


async def burst(
    kind: str, stack: LocalStack, http: httpx.AsyncClient, target: str, n: int, timeout: float
) -> Burst:
    """``n`` simultaneous session requests for ``target`` (an agent id, or the plain worker's
    agent name); the callers leave once every agent has arrived and the rooms settled."""
    result = Burst()
    listeners: list[Listener] = []

    async def one() -> None:
        sent, sent_at = time.monotonic(), time.time()
        if kind == "stimm":
            resp = await http.post("/api/sessions", json={"agent_id": target})
            if resp.status_code != 201:
                result.refused.append(f"{resp.status_code} {resp.text[:160]}")
                return
            url, token = resp.json()["livekit_url"], resp.json()["token"]
        else:
            url, token = await open_room(stack, target)
        result.request_ms.append((time.monotonic() - sent) * 1000)
        listener = Listener(hears=False)
        listeners.append(listener)
        await listener.join(url, token)
        try:
            await asyncio.wait_for(listener.agent_joined.wait(), timeout)
        except TimeoutError:
            result.lost += 1
            return
        assert listener.agent_joined_at is not None
        result.seen_ms.append((listener.agent_joined_at - sent) * 1000)
        joined = agent_joined_at(listener.room)
        if joined is not None:
            result.dispatch_ms.append((joined - sent_at) * 1000)

    try:
        await asyncio.gather(*(one() for _ in range(n)))
        await asyncio.sleep(3)  # a second agent dispatched into a room would have arrived
        result.rooms_with_two_agents = sum(1 for lst in listeners if len(agents(lst.room)) > 1)
    finally:
        await asyncio.gather(*(lst.leave() for lst in listeners), return_exceptions=True)
    return result


async def run_kind(
    kind: str, stack: LocalStack, target: str, args: argparse.Namespace
) -> dict[str, Any]:
    total = Burst()
    rounds = []
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
    ) as http:
        # one session first: the first dispatch of a worker pays one-time costs
        await burst(kind, stack, http, target, 1, args.timeout)
        await calls_ended(stack, kind)
        for r in range(args.rounds):
            b = await burst(kind, stack, http, target, args.burst, args.timeout)
            rounds.append(b.as_dict())
            print(f"  {kind} round {r + 1}: {json.dumps(b.as_dict())}", flush=True)
            total.dispatch_ms += b.dispatch_ms
            total.seen_ms += b.seen_ms
            total.request_ms += b.request_ms
            total.lost += b.lost
            total.refused += b.refused
            total.rooms_with_two_agents += b.rooms_with_two_agents
            await calls_ended(stack, kind)
    return {**total.as_dict(), "rounds": rounds}


ROUTE = "create_session"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(args.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    results: dict[str, Any] = {}
    profiled: dict[str, Any] | None = None
    slots = args.burst // WORKERS + 2
    with serve_in_process(run_dir / "logs", reply=INSTANT_REPLY) as llm_url:
        async with FakeSpeechServer(
            canned_transcript=QUESTIONS[0], endpoint_silence_s=None
        ) as speech:
            for text in (INSTANT_REPLY, GREETING):
                await asyncio.to_thread(synthesized, text, INSTANT_TTS_RATE)
            for executor in args.executors:
                stack = LocalStack(
                    StackOptions(
                        run_dir=run_dir / f"stack-{executor}",
                        database_url=(
                            ensure_database(f"stimm_bench_dispatch_{executor}", fresh=True)
                            if args.postgres
                            else None
                        ),
                        # the bursts start more sessions a minute than one key may by default
                        env={"STIMM_SESSIONS_PER_MINUTE_PER_KEY": "100000"},
                        workers=WORKERS,
                        worker_env={
                            "STIMM_WORKER_MAX_SESSIONS": str(slots),
                            "STIMM_WORKER_IDLE_PROCESSES": str(args.idle),
                            "STIMM_WORKER_EXECUTOR": executor,
                            "STIMM_WORKER_LATENCY_SLO": "0",
                            "STIMM_WORKER_CPU_LIMIT": "0",
                        },
                    )
                )
                try:
                    stack.start()
                    async with httpx.AsyncClient(
                        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
                    ) as http:
                        resp = await http.post(
                            "/api/agents", json=agent_for("instant", llm_url, speech.url)
                        )
                        resp.raise_for_status()
                        agent_id = resp.json()["id"]
                    await asyncio.sleep(args.settle)
                    print(f"stimm ({executor} executor, {WORKERS} workers x {slots} slots):")
                    profile = None
                    if args.profile and executor == args.executors[0]:
                        cp = stack.process("control-plane")
                        assert cp.pid is not None
                        profile = Profile(cp.pid, run_dir / "session_request.collapsed")
                    results[f"stimm-{executor}"] = await run_kind("stimm", stack, agent_id, args)
                    if profile is not None:
                        profiled = profile.stop(within=ROUTE)
                    if executor == args.executors[-1] and not args.no_plain:
                        for w in stack.workers:
                            w.stop()
                        print("plain livekit-agents worker:", flush=True)
                        plain = start_plain(
                            "instant",
                            stack,
                            run_dir / f"plain-{executor}",
                            llm_url,
                            speech.url,
                            # as many warm processes as both Stimm workers hold
                            idle=args.idle * WORKERS,
                        )
                        try:
                            await asyncio.sleep(args.settle)
                            results["plain"] = await run_kind(
                                "plain", stack, f"{PLAIN_AGENT}-instant", args
                            )
                        finally:
                            plain.stop()
                finally:
                    stack.stop()
    return {
        "benchmark": "dispatch",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "burst": args.burst,
        "rounds": args.rounds,
        "workers": WORKERS,
        "slots_per_worker": slots,
        "idle_processes_per_worker": args.idle,
        "database": "postgres" if args.postgres else "sqlite",
        "providers": "fake Deepgram + fake ElevenLabs (canned) + scripted LLM; callers listen",
        "results": results,
        "session_request_profile": profiled,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=20, help="simultaneous session requests")
    parser.add_argument("--rounds", type=int, default=3, help="bursts per worker kind")
    parser.add_argument(
        "--executors",
        type=lambda v: [e for e in v.split(",") if e],
        default=["process", "thread"],
        help="Stimm job executors to measure: process, thread",
    )
    parser.add_argument(
        "--idle", type=int, default=2, help="prewarmed job processes per Stimm worker"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per agent")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds after workers start")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain worker")
    parser.add_argument("--postgres", action="store_true", help="Postgres instead of SQLite")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the control plane during the bursts"
    )
    parser.add_argument(
        "--run-dir", default=str(ROOT / ".stimm" / "bench-dispatch"), help="logs and data"
    )
    return parser.parse_args()


if __name__ == "__main__":
    cli_args = parse_args()
    report = asyncio.run(main(cli_args))
    for name, r in report["results"].items():
        print(
            f"{name:14s}: dispatch p50 {r['dispatch_p50_ms']} / p99 {r['dispatch_p99_ms']} ms "
            f"(request p50 {r['request_p50_ms']} ms), lost {r['lost']}, "
            f"refused {len(r['refused'])}, rooms with two agents {r['rooms_with_two_agents']}"
        )
    out = ROOT / "bench" / "results" / "dispatch.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
