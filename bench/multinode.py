"""Several LiveKit nodes and control planes on one machine: dispatch and spread under a burst,
and what becomes of the calls of a dead node.

The multi-node topology of ``stimm dev --nodes 2 --control-planes 2`` (two livekit-server
nodes on one Redis, two control planes on one PostgreSQL, HAProxy in front of both, the
workers reaching LiveKit through it), an agent on the instant providers (streaming fakes of
Deepgram and ElevenLabs, the scripted LLM), and ``--rounds`` bursts of ``--burst``
simultaneous ``POST /api/sessions`` through HAProxy, each caller joining without a microphone
and noting when the agent arrives. Per burst: dispatch p50/p99 (request sent → agent seen),
rooms per LiveKit node (LiveKit's own placement, read from Redis) and sessions per worker.
Then ``--calls`` calls are started through HAProxy, plus one whose caller connects to node 1
by its own URL, and node 1 is SIGKILLed: the seconds until each of its calls is back (caller
and agent rejoined the room LiveKit re-creates on node 0), how many calls are still active
afterwards, and when the pinned call (which has no other node to reach) is marked failed,
with the reason. bench/results/multinode.json.

    .venv/bin/python bench/multinode.py [--burst 20] [--rounds 2] [--executor thread]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capacity import agent_for, calls_ended  # noqa: E402
from bench.dispatch import Burst  # noqa: E402
from bench.plain_worker import GREETING  # noqa: E402
from bench.roundtrip import INSTANT_REPLY, INSTANT_TTS_RATE, QUESTIONS  # noqa: E402
from bench.stats import machine, pct  # noqa: E402
from control_plane.core.config import Settings  # noqa: E402
from control_plane.errors import ControlPlaneError  # noqa: E402
from control_plane.livekit import LiveKit  # noqa: E402
from control_plane.livekit_nodes import LiveKitNodes  # noqa: E402
from stimm.stack import LocalStack, StackOptions  # noqa: E402
from stimm.stack.postgres import ensure_database  # noqa: E402
from testkit.caller import Listener  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.fakes.speech_server import FakeSpeechServer, synthesized  # noqa: E402

NODES = 2
WORKERS = 2


async def node_of(stack: LocalStack, rooms: list[str]) -> dict[str, int]:
    """The node index (0, 1) LiveKit placed each room on."""
    nodes = LiveKitNodes(f"redis://127.0.0.1:{stack.options.redis_port}/0")
    try:
        placed = await nodes.node_of_rooms(rooms)
        ips = {n.id: n.ip for n in (await nodes.nodes()).values()}
    finally:
        await nodes.aclose()
    index = {stack.node_ip(i): i for i in range(NODES)}
    return {room: index[ips[n]] for room, n in placed.items() if n in ips}


async def start_calls(
    http: httpx.AsyncClient, agent_id: str, n: int, timeout: float, tag: str
) -> tuple[Burst, list[dict[str, Any]], list[Listener]]:
    """``n`` simultaneous session requests; each caller joins and waits for its agent."""
    result = Burst()
    sessions: list[dict[str, Any]] = []
    listeners: list[Listener] = []

    async def one(i: int) -> None:
        sent = time.monotonic()
        resp = await http.post(
            "/api/sessions", json={"agent_id": agent_id}, headers={"Idempotency-Key": f"{tag}-{i}"}
        )
        if resp.status_code not in (200, 201):
            result.refused.append(f"{resp.status_code} {resp.text[:160]}")
            return
        session = resp.json()
        result.request_ms.append((time.monotonic() - sent) * 1000)
        listener = Listener(hears=False)
        listeners.append(listener)
        sessions.append(session)
        await listener.join(session["livekit_url"], session["token"])
        try:
            await asyncio.wait_for(listener.agent_joined.wait(), timeout)
        except TimeoutError:
            result.lost += 1
            return
        assert listener.agent_joined_at is not None
        result.dispatch_ms.append((listener.agent_joined_at - sent) * 1000)

    await asyncio.gather(*(one(i) for i in range(n)))
    return result, sessions, listeners


async def spread(
    stack: LocalStack, http: httpx.AsyncClient, sessions: list[dict[str, Any]]
) -> dict[str, Any]:
    placed = await node_of(stack, [s["room"] for s in sessions])
    workers: Counter[str] = Counter()
    for s in sessions:
        record = (await http.get(f"/api/sessions/{s['session_id']}")).json()
        workers[record.get("worker_id") or "none"] += 1
    return {
        "rooms_per_node": {f"node{k}": v for k, v in sorted(Counter(placed.values()).items())},
        "sessions_per_worker": sorted(workers.values(), reverse=True),
    }


async def call_back(livekit: LiveKit, room: str, since: float) -> bool:
    """Whether ``room`` has its caller and an agent, both joined (again) since ``since`` (Unix
    seconds): what the control plane's node sweep judges a call that came back by."""
    try:
        return await livekit.call_in_room(room, None, since)
    except ControlPlaneError:  # the API call went to the dead node: not back yet
        return False


async def dead_node(
    stack: LocalStack, http: httpx.AsyncClient, agent_id: str, args: argparse.Namespace
) -> dict[str, Any]:
    """Start calls through HAProxy plus one whose caller reaches node 1 only, SIGKILL node 1:
    time each of its calls until caller and agent are back in the room re-created on node 0,
    and the pinned one until it is marked failed."""
    _, sessions, listeners = await start_calls(http, agent_id, args.calls, args.timeout, "dead")
    pinned: dict[str, Any] | None = None
    for _ in range(20):  # rooms are placed at random: one on node 1 for the pinned caller
        resp = await http.post("/api/sessions", json={"agent_id": agent_id})
        resp.raise_for_status()
        candidate = resp.json()
        if (await node_of(stack, [candidate["room"]])).get(candidate["room"]) == 1:
            pinned = candidate
            break
    assert pinned is not None, "no room placed on node 1 in 20 sessions"
    listener = Listener(hears=False)
    listeners.append(listener)
    await listener.join(stack.node_url(1), pinned["token"])
    await asyncio.wait_for(listener.agent_joined.wait(), args.timeout)
    try:
        placed = await node_of(stack, [s["room"] for s in sessions])
        on_dead = [s for s in sessions if placed.get(s["room"]) == 1]
        await asyncio.sleep(3)  # LiveKit's node stats (every 2 s) have seen the calls
        killed, killed_at = time.monotonic(), time.time()
        livekit = LiveKit(
            Settings(
                dev=True,
                livekit_url=stack.livekit_url,
                livekit_api_key=stack.options.api_key,
                livekit_api_secret=SecretStr(stack.options.api_secret),
            )
        )
        stack.livekit_nodes[1].signal(signal.SIGKILL)
        back: dict[str, float] = {}
        pinned_marked: float | None = None
        pinned_reason = ""
        while time.monotonic() - killed < args.mark_timeout and (
            pinned_marked is None or len(back) < len(on_dead)
        ):
            for s in on_dead:
                if s["room"] not in back and await call_back(livekit, s["room"], killed_at):
                    back[s["room"]] = time.monotonic() - killed
            if pinned_marked is None:
                record = (await http.get(f"/api/sessions/{pinned['session_id']}")).json()
                if record["status"] != "active":
                    pinned_marked = time.monotonic() - killed
                    pinned_reason = record.get("failure_reason") or record["status"]
            await asyncio.sleep(0.25)
        records = [(await http.get(f"/api/sessions/{s['session_id']}")).json() for s in sessions]
        times = sorted(back.values())
        return {
            "calls": len(sessions),
            "calls_on_dead_node": len(on_dead),
            "back_on_node0": len(back),
            "back_p50_s": round(statistics.median(times), 1) if times else None,
            "back_max_s": round(max(times), 1) if times else None,
            "still_active": sum(r["status"] == "active" for r in records),
            "pinned_caller_marked_s": round(pinned_marked, 1) if pinned_marked else None,
            "pinned_caller_reason": pinned_reason,
        }
    finally:
        await asyncio.gather(*(lst.leave() for lst in listeners), return_exceptions=True)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run_dir = Path(args.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    slots = args.burst // WORKERS + 2
    rounds: list[dict[str, Any]] = []
    total = Burst()
    with serve_in_process(run_dir / "logs", reply=INSTANT_REPLY) as llm_url:
        async with FakeSpeechServer(
            canned_transcript=QUESTIONS[0], endpoint_silence_s=None
        ) as speech:
            for text in (INSTANT_REPLY, GREETING):
                await asyncio.to_thread(synthesized, text, INSTANT_TTS_RATE)
            stack = LocalStack(
                StackOptions(
                    run_dir=run_dir / "stack",
                    database_url=ensure_database("stimm_bench_multinode", fresh=True),
                    nodes=NODES,
                    control_planes=2,
                    workers=WORKERS,
                    env={
                        "STIMM_SESSIONS_PER_MINUTE_PER_KEY": "100000",
                        "STIMM_WORKER_SWEEP_INTERVAL": "1",
                    },
                    worker_env={
                        "STIMM_WORKER_MAX_SESSIONS": str(slots),
                        "STIMM_WORKER_IDLE_PROCESSES": str(args.idle),
                        "STIMM_WORKER_EXECUTOR": args.executor,
                        "STIMM_WORKER_PRELOAD_MODELS": "0",
                        "STIMM_WORKER_LATENCY_SLO": "0",
                        "STIMM_WORKER_CPU_LIMIT": "0",
                    },
                )
            )
            try:
                stack.start()
                async with httpx.AsyncClient(
                    base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
                ) as http:
                    resp = await http.post(
                        "/api/agents", json=agent_for("instant", llm_url, speech.url)
                    )
                    resp.raise_for_status()
                    agent_id = resp.json()["id"]
                    await asyncio.sleep(args.settle)
                    for r in range(args.rounds):
                        b, sessions, listeners = await start_calls(
                            http, agent_id, args.burst, args.timeout, f"round{r}"
                        )
                        row = {**b.as_dict(), **await spread(stack, http, sessions)}
                        await asyncio.gather(*(lst.leave() for lst in listeners))
                        rounds.append(row)
                        print(f"  round {r + 1}: {json.dumps(row)}", flush=True)
                        total.dispatch_ms += b.dispatch_ms
                        total.request_ms += b.request_ms
                        total.lost += b.lost
                        total.refused += b.refused
                        await calls_ended(stack, "stimm")
                    node_death = await dead_node(stack, http, agent_id, args)
                    print(f"  dead node: {json.dumps(node_death)}", flush=True)
            finally:
                stack.stop()
    summary = total.as_dict()
    summary.pop("rooms_with_two_agents")
    return {
        "benchmark": "multinode",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "topology": f"{NODES} LiveKit nodes, 2 control planes behind HAProxy, {WORKERS} workers "
        f"(through HAProxy) x {slots} slots, {args.executor} executor, PostgreSQL, one Redis",
        "burst": args.burst,
        "rounds": args.rounds,
        "providers": "fake Deepgram + fake ElevenLabs (canned) + scripted LLM; callers listen",
        "dispatch": {**summary, "dispatch_p99_ms": _p99(total.dispatch_ms)},
        "per_round": rounds,
        "dead_node": node_death,
    }


def _p99(values: list[float]) -> float | None:
    return round(pct(values, 0.99), 1) if values else None


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=20, help="simultaneous session requests")
    parser.add_argument("--rounds", type=int, default=2, help="bursts")
    parser.add_argument(
        "--executor", choices=("process", "thread"), default="thread", help="job executor"
    )
    parser.add_argument("--idle", type=int, default=2, help="prewarmed job processes per worker")
    parser.add_argument("--calls", type=int, default=8, help="calls up when node 1 is killed")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per agent")
    parser.add_argument("--mark-timeout", type=float, default=60.0, help="seconds to wait")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after workers start")
    parser.add_argument(
        "--run-dir", default=str(ROOT / ".stimm" / "bench-multinode"), help="logs and data"
    )
    return parser.parse_args()


if __name__ == "__main__":
    cli_args = parse_args()
    report = asyncio.run(main(cli_args))
    d, dead = report["dispatch"], report["dead_node"]
    print(
        f"dispatch p50 {d['dispatch_p50_ms']} / p99 {d['dispatch_p99_ms']} ms, lost {d['lost']}, "
        f"refused {len(d['refused'])}; dead node: {dead['back_on_node0']}/"
        f"{dead['calls_on_dead_node']} calls back on node 0 (p50 {dead['back_p50_s']} s, max "
        f"{dead['back_max_s']} s), {dead['still_active']}/{dead['calls']} active after; the pinned "
        f"call marked in {dead['pinned_caller_marked_s']} s"
    )
    out = ROOT / "bench" / "results" / "multinode.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
