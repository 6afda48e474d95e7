"""Sessions per worker on this machine: ramp concurrent callers on Stimm and on plain livekit.

Two provider sets, each on two workers, on one local stack, one after the other:

- ``offline``: the default agent's engines: Whisper STT, Piper TTS, Silero VAD, a scripted
  OpenAI-compatible LLM. Stimm loads Whisper and Piper once per worker, in its inference process
  (``worker/inference.py``); the plain worker loads them in every job process;
- ``instant``: streaming fakes of Deepgram and ElevenLabs (``testkit/fakes/speech_server.py``:
  a canned transcript, pre-synthesized speech) and the scripted LLM: no model work, what is left
  is each worker's own cost.

Workers: ``stimm`` (``stimm worker`` with its pool settings; its latency and CPU guards off, so
the ramp finds where they should sit), sessions requested through the control plane;
``stimm-thread``: the same with ``STIMM_WORKER_EXECUTOR=thread`` (every call a task of one job
process: the memory-bound choice); ``plain``
(``bench/plain_worker.py``: livekit-agents' defaults, load threshold off so it takes every job),
dispatched through the LiveKit API.

For each level of concurrent callers every caller waits for the greeting, then asks ``--turns``
questions. Per level: callers answered, p50/p95 of end of the caller's speech → first agent
audio as the caller hears it, CPU (cores) and PSS per session (the worker's process tree:
peak PSS over the level, and the peak minus the idle worker's, per session), dispatch p50/p99
(session request → the agent in the room). A level passes when every caller was answered and
the p95 is within the SLO. Stimm/plain ratios per level; bench/results/capacity.json and the
chart bench/results/capacity.png (p95 and PSS per session against concurrent sessions). Before
the ramp it measures what a Stimm job process holds (``measure_job_process``).

    .venv/bin/python bench/capacity.py [--providers offline,instant] [--levels 1,2,4] [--turns 2]
        [--contenders stimm,stimm-thread,plain]

A run of some provider sets or contenders keeps the others' last figures in the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from bench.plain_worker import GREETING, open_room  # noqa: E402
from bench.profile import Profile  # noqa: E402
from bench.roundtrip import INSTANT_REPLY, INSTANT_TTS_RATE, QUESTIONS, agent_body  # noqa: E402
from bench.stats import machine, pct  # noqa: E402
from stimm.stack import LocalStack, ManagedProcess, StackOptions  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.fakes.speech_server import FakeSpeechServer, synthesized  # noqa: E402

PLAIN_AGENT = "plain-capacity-bench"
STIMM_EXECUTORS = {"stimm": "process", "stimm-thread": "thread"}
"""Stimm's contenders in the ramp, by the job executor their worker runs."""
CONTENDERS = (*STIMM_EXECUTORS, "plain")
SLO_S = {"offline": 5.0, "instant": 1.5}
"""Default p95 SLO per provider set (one offline session alone is ~3 s on 2 cores)."""


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
        """CPU of the live tree plus what its processes reaped: a job process exits with its
        call, often before the level's last reading, and its CPU then shows only in its
        parent's (livekit's forkserver) children times."""
        total = 0.0
        for p in self.tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def memory(self) -> tuple[int, int]:
        """RSS and PSS of the tree now."""
        rss = pss = 0
        for p in self.tree():
            try:
                info = p.memory_full_info()
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            except psutil.Error:
                pass
        return rss, pss

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            rss, pss = self.memory()
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
    dispatch_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_cores_per_session: float = 0.0
    rss_mb_per_session: float = 0.0
    pss_mb_per_session: float = 0.0
    pss_mb_added_per_session: float = 0.0
    profile: dict[str, Any] | None = None

    @property
    def p95_ms(self) -> float | None:
        return pct(self.latencies_ms, 0.95) if self.latencies_ms else None

    def passed(self, slo_ms: float) -> bool:
        p95 = self.p95_ms
        return self.answered == self.sessions and p95 is not None and p95 <= slo_ms

    def as_dict(self) -> dict[str, Any]:
        def ms(values: list[float], q: float) -> float | None:
            return round(pct(values, q), 1) if values else None

        return {
            "sessions": self.sessions,
            "answered": self.answered,
            "turns": len(self.latencies_ms),
            "p50_ms": round(statistics.median(self.latencies_ms), 1) if self.latencies_ms else None,
            "p95_ms": ms(self.latencies_ms, 0.95),
            "dispatch_p50_ms": ms(self.dispatch_ms, 0.50),
            "dispatch_p99_ms": ms(self.dispatch_ms, 0.99),
            "cpu_cores_per_session": round(self.cpu_cores_per_session, 3),
            "rss_mb_per_session": round(self.rss_mb_per_session, 1),
            "pss_mb_per_session": round(self.pss_mb_per_session, 1),
            "pss_mb_added_per_session": round(self.pss_mb_added_per_session, 1),
            "errors": self.errors[:5],
            **({"profile": self.profile} if self.profile else {}),
        }


async def converse(url: str, token: str, requested_at: float, turns: int, level: Level) -> None:
    from testkit.audio import synthesize
    from testkit.caller import Caller

    caller = Caller()
    try:
        await caller.join(url, token)
        await asyncio.wait_for(caller.agent_joined.wait(), 60)
        assert caller.agent_joined_at is not None
        level.dispatch_ms.append((caller.agent_joined_at - requested_at) * 1000)
        await caller.next_utterance(timeout=60)  # greeting
        level.answered += 1
        for i in range(turns):
            ended = await caller.say(synthesize(QUESTIONS[i % len(QUESTIONS)]))
            # what the agent said while the caller spoke (on an overloaded machine, the end of
            # a late greeting) is not the reply: it timed the reply before the question ended
            caller.skip_heard()
            heard = await caller.next_utterance(timeout=30)
            level.latencies_ms.append((heard.first_audio_at - ended) * 1000)
    except (TimeoutError, httpx.HTTPError) as e:
        level.errors.append(f"{type(e).__name__}: {e}")
    finally:
        await caller.leave()


async def stimm_session(http: httpx.AsyncClient, agent_id: str) -> tuple[str, str]:
    resp = await http.post("/api/sessions", json={"agent_id": agent_id})
    if resp.status_code != 201:
        raise httpx.HTTPError(f"session refused: {resp.status_code} {resp.text[:200]}")
    body = resp.json()
    return body["livekit_url"], body["token"]


async def run_level(
    kind: str,
    stack: LocalStack,
    worker_pid: int,
    sessions: int,
    turns: int,
    agent_id: str,
    profile_to: Path | None = None,
) -> Level:
    """``sessions`` callers at once; with ``profile_to``, py-spy samples the worker's process
    tree meanwhile (where its CPU went, in the level's figures; the stacks in that file)."""
    level = Level(sessions)
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=60
    ) as http:

        async def one(n: int) -> None:
            requested_at = time.monotonic()
            try:
                if kind in STIMM_EXECUTORS:
                    url, token = await stimm_session(http, agent_id)
                else:
                    url, token = await open_room(stack, agent_id)  # the plain worker's name
            except httpx.HTTPError as e:
                level.errors.append(str(e))
                return
            await converse(url, token, requested_at, turns, level)

        profile = (
            Profile(worker_pid, profile_to, subprocesses=True, idle=False) if profile_to else None
        )
        try:
            with TreeSampler(worker_pid) as sampler:
                _, idle_pss = sampler.memory()
                await asyncio.gather(*(one(n) for n in range(sessions)))
        finally:
            if profile is not None:
                level.profile = profile.stop(top=25)
    level.cpu_cores_per_session = sampler.cpu_s / sampler.wall_s / sessions
    level.rss_mb_per_session = sampler.peak_rss / 2**20 / sessions
    level.pss_mb_per_session = sampler.peak_pss / 2**20 / sessions
    level.pss_mb_added_per_session = max(0, sampler.peak_pss - idle_pss) / 2**20 / sessions
    return level


async def ramp(
    kind: str,
    stack: LocalStack,
    worker_pid: int,
    args: argparse.Namespace,
    agent_id: str,
    slo_s: float,
) -> dict[str, Any]:
    levels: list[Level] = []
    best: Level | None = None
    for n in args.levels:
        profile_to = Path(args.run_dir) / f"profile-{kind}-{n}.collapsed" if args.profile else None
        level = await run_level(kind, stack, worker_pid, n, args.turns, agent_id, profile_to)
        levels.append(level)
        print(f"  {kind:5s} {n:2d} sessions: {json.dumps(level.as_dict())}", flush=True)
        await calls_ended(stack, kind)
        if not level.passed(slo_s * 1000):
            break
        best = level
    return {
        "max_sessions": best.sessions if best else 0,
        "at_max": best.as_dict() if best else None,
        "levels": [lv.as_dict() for lv in levels],
    }


async def calls_ended(stack: LocalStack, kind: str, timeout: float = 60.0) -> None:
    """Wait until the last level's jobs have ended: a job outlives its caller by its flush, and
    a Stimm worker counts its slot until then."""
    if kind not in STIMM_EXECUTORS:
        await asyncio.sleep(5)  # the plain worker admits jobs by no count
        return
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=10
    ) as http:
        while time.monotonic() < deadline:
            if (await http.get("/api/workers")).json().get("sessions") == 0:
                return
            await asyncio.sleep(1)


def measure_job_process() -> dict[str, Any]:
    """What a Stimm job process holds: USS/RSS after its imports, after its prewarm (shared
    models: Silero VAD and the end-of-turn model only), and what loading Whisper and Piper in
    it would add (the design before the inference process)."""
    script = (
        "import time, psutil\n"
        "p = psutil.Process()\n"
        "def mb():\n"
        "    m = p.memory_full_info(); return round(m.uss / 2**20), round(m.rss / 2**20)\n"
        "t0 = time.perf_counter()\n"
        "import worker.main as m\n"
        "t1 = time.perf_counter(); imported = mb()\n"
        "class P: userdata = {}\n"
        "m.prewarm(P())\n"
        "t2 = time.perf_counter(); prewarmed = mb()\n"
        "from worker.providers import PiperTTS, WhisperSTT\n"
        "WhisperSTT.load(); PiperTTS.load()\n"
        "t3 = time.perf_counter(); models = mb()\n"
        "print(t1 - t0, t2 - t1, t3 - t2, *imported, *prewarmed, *models)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    ).stdout.split()
    imp, prewarm, models, *mem = map(float, out[-9:])
    return {
        "import_s": round(imp, 2),
        "prewarm_s": round(prewarm, 2),
        "uss_mb_after_import": mem[0],
        "rss_mb_after_import": mem[1],
        "uss_mb_after_prewarm": mem[2],
        "rss_mb_after_prewarm": mem[3],
        "whisper_piper_load_s": round(models, 2),
        "uss_mb_added_by_whisper_piper": mem[4] - mem[2],
        "rss_mb_added_by_whisper_piper": mem[5] - mem[3],
    }


def agent_for(providers: str, llm_url: str, speech_url: str) -> dict[str, Any]:
    if providers == "offline":
        return agent_body(llm_url, {}, stt={"provider": "local"}, tts={"provider": "local"})
    return agent_body(
        llm_url,
        {},
        stt={"provider": "deepgram", "options": {"base_url": f"{speech_url}/v1/listen"}},
        tts={"provider": "elevenlabs", "options": {"base_url": f"{speech_url}/v1"}},
    )


def with_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """One provider set's figures with each Stimm contender's ratios to plain, per level and at
    the most sessions within the SLO."""
    plain = figures.get("plain")
    for kind in STIMM_EXECUTORS:
        stimm = figures.get(kind)
        if stimm is None or plain is None:
            continue
        suffix = "" if kind == "stimm" else "_" + kind.removeprefix("stimm-")
        s, p = stimm["max_sessions"], plain["max_sessions"]
        figures["ratio_max_sessions" + suffix] = round(s / p, 2) if p else None
        by_level = {lv["sessions"]: lv for lv in plain["levels"]}
        rows: list[dict[str, Any]] = []
        for lv in stimm["levels"]:
            other = by_level.get(lv["sessions"])
            if other is None:
                continue
            row: dict[str, Any] = {"sessions": lv["sessions"]}
            for key in ("p95_ms", "pss_mb_per_session", "cpu_cores_per_session"):
                row[key] = round(lv[key] / other[key], 2) if lv[key] and other[key] else None
            rows.append(row)
        figures["ratio_per_level" + suffix] = rows
    return figures


async def main(args: argparse.Namespace) -> dict[str, Any]:
    print("a Stimm job process: imports, prewarm, and what the models would add ...", flush=True)
    job_process = measure_job_process()
    print(f"  {json.dumps(job_process)}", flush=True)

    run_dir = Path(args.run_dir)
    # a fresh database and bootstrap key, and logs whose "registered worker" is this run's
    shutil.rmtree(run_dir / "stack", ignore_errors=True)
    shutil.rmtree(run_dir / "logs", ignore_errors=True)
    results: dict[str, Any] = {}
    with serve_in_process(run_dir / "logs", reply=INSTANT_REPLY) as llm_url:
        async with FakeSpeechServer(
            canned_transcript=QUESTIONS[0], endpoint_silence_s=None
        ) as speech:
            for text in (INSTANT_REPLY, GREETING):
                await asyncio.to_thread(synthesized, text, INSTANT_TTS_RATE)
            results = await compare(args, run_dir, llm_url, speech.url)
    return {
        "benchmark": "capacity",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "providers": {
            "offline": "whisper tiny.en + piper en_US-joe-medium + silero; scripted LLM",
            "instant": "fake Deepgram + fake ElevenLabs (canned) + silero; scripted LLM",
        },
        "turns_per_session": args.turns,
        "stimm_idle_processes": args.idle,
        "job_process": job_process,
        **results,
    }


async def compare(
    args: argparse.Namespace, run_dir: Path, llm_url: str, speech_url: str
) -> dict[str, Any]:
    """Per provider set: ramp callers on a Stimm worker, then on a plain livekit worker."""
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
    try:
        stack.start()
        for providers in args.providers:
            slo = args.slo if args.slo is not None else SLO_S[providers]
            async with httpx.AsyncClient(
                base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
            ) as http:
                agent = await http.post(
                    "/api/agents", json=agent_for(providers, llm_url, speech_url)
                )
                agent.raise_for_status()
                agent_id = agent.json()["id"]

            ramps: dict[str, Any] = {}
            for kind in args.contenders:
                print(f"{providers}: {kind} worker (SLO p95 <= {slo:g} s):", flush=True)
                if kind in STIMM_EXECUTORS:
                    worker = stack.add_worker({"STIMM_WORKER_EXECUTOR": STIMM_EXECUTORS[kind]})
                    try:
                        await asyncio.sleep(args.settle)
                        assert worker.pid is not None
                        ramps[kind] = await ramp(kind, stack, worker.pid, args, agent_id, slo)
                    finally:
                        worker.stop()
                    continue
                plain_proc = start_plain(providers, stack, run_dir, llm_url, speech_url, args.idle)
                try:
                    await asyncio.sleep(args.settle)
                    assert plain_proc.pid is not None
                    ramps[kind] = await ramp(
                        kind, stack, plain_proc.pid, args, f"{PLAIN_AGENT}-{providers}", slo
                    )
                finally:
                    plain_proc.stop()
            results[providers] = {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "turns_per_session": args.turns,
                "stimm_idle_processes": args.idle,
                "slo_p95_s": slo,
                **ramps,
            }
    finally:
        stack.stop()
    return results


def start_plain(
    providers: str,
    stack: LocalStack,
    run_dir: Path,
    llm_url: str,
    speech_url: str,
    idle: int | None = None,
) -> ManagedProcess:
    """The plain livekit-agents worker, registered; ``idle`` prewarmed job processes (livekit's
    default when None)."""
    proc = ManagedProcess(
        f"plain-worker-{providers}",
        [
            sys.executable,
            str(ROOT / "bench" / "plain_worker.py"),
            *("--agent-name", f"{PLAIN_AGENT}-{providers}", "--llm-url", llm_url),
            *("--speech-url", speech_url, "--providers", providers),
            *(() if idle is None else ("--idle", str(idle))),
        ],
        log_dir=run_dir / "logs",
        env=stack.service_env(),
        cwd=ROOT,
    )
    proc.start()
    try:
        proc.wait_ready(lambda: "registered worker" in proc.log_tail(400), timeout=120)
    except Exception:
        proc.stop()
        raise
    return proc


def chart(report: dict[str, Any], out: Path) -> None:
    """p95 latency and PSS per session against concurrent sessions, Stimm vs plain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    sets = [k for k in ("offline", "instant") if k in report]
    fig, axes = plt.subplots(len(sets), 2, figsize=(10, 3.6 * len(sets)), squeeze=False)
    for row, providers in enumerate(sets):
        for col, (key, label) in enumerate(
            (("p95_ms", "caller p95 (ms)"), ("pss_mb_per_session", "PSS per session (MB)"))
        ):
            ax = axes[row][col]
            for kind, style in (("stimm", "o-"), ("stimm-thread", "^-."), ("plain", "s--")):
                if kind not in report[providers]:
                    continue
                levels = report[providers][kind]["levels"]
                xs = [lv["sessions"] for lv in levels if lv[key] is not None]
                ys = [lv[key] for lv in levels if lv[key] is not None]
                ax.plot(xs, ys, style, label=kind)
                for lv in levels:  # a level where callers went unanswered says so
                    if key == "p95_ms" and lv[key] is not None and lv["answered"] < lv["sessions"]:
                        note = f"{lv['answered']}/{lv['sessions']} answered"
                        ax.annotate(
                            note,
                            (lv["sessions"], lv[key]),
                            xytext=(-6, -14),
                            textcoords="offset points",
                            ha="right",
                            fontsize=8,
                            color="red",
                        )
            if key == "p95_ms":
                ax.axhline(report[providers]["slo_p95_s"] * 1000, color="grey", lw=0.8)
            ax.set_title(f"{providers}: {label}")
            ax.set_xlabel("concurrent sessions")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--providers",
        type=lambda v: [p for p in v.split(",") if p],
        default=["offline", "instant"],
        help="provider sets: offline, instant",
    )
    parser.add_argument(
        "--slo", type=float, default=None, help="p95 seconds (default: 5.0 offline, 1.5 instant)"
    )
    parser.add_argument(
        "--levels",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[1, 2, 4, 6, 8],
        help="concurrent callers per step",
    )
    parser.add_argument(
        "--contenders",
        type=lambda v: [c for c in v.split(",") if c],
        default=["stimm", "plain"],
        help=f"workers to ramp, in order: {', '.join(CONTENDERS)}",
    )
    parser.add_argument("--turns", type=int, default=2, help="questions per caller")
    parser.add_argument("--idle", type=int, default=1, help="Stimm prewarmed job processes")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds after a worker starts")
    parser.add_argument("--postgres", action="store_true", help="Postgres instead of SQLite")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy each worker's process tree per level"
    )
    parser.add_argument(
        "--run-dir", default=str(ROOT / ".stimm" / "bench-capacity"), help="logs and data"
    )
    return parser.parse_args()


if __name__ == "__main__":
    cli_args = parse_args()
    if unknown := set(cli_args.contenders) - set(CONTENDERS):
        sys.exit(f"unknown contenders: {', '.join(sorted(unknown))}")
    report = asyncio.run(main(cli_args))
    results = ROOT / "bench" / "results"
    out = results / "capacity.json"
    earlier = json.loads(out.read_text()) if out.exists() else {}
    for providers in ("offline", "instant"):
        # a run of some provider sets or contenders keeps the others' last figures
        kept = earlier.get(providers)
        if providers not in report:
            if kept is not None:
                report[providers] = with_ratios({"date": earlier["date"], **kept})
            continue
        figures = report[providers]
        for kind in CONTENDERS:
            if kind not in figures and kept is not None and kind in kept:
                figures[kind] = {"date": kept.get("date", earlier["date"]), **kept[kind]}
        with_ratios(figures)
    for providers in cli_args.providers:
        r = report[providers]
        for name in CONTENDERS:
            if name not in r:
                continue
            at = r[name]["at_max"] or {}
            print(
                f"{providers:7s} {name:12s}: max sessions {r[name]['max_sessions']} "
                f"(p95 {at.get('p95_ms')} ms), PSS {at.get('pss_mb_per_session')} MB/session "
                f"(added {at.get('pss_mb_added_per_session')}), "
                f"CPU {at.get('cpu_cores_per_session')} cores/session"
            )
        for key in ("ratio_per_level", "ratio_per_level_thread"):
            if key in r:
                print(f"{providers:7s} {key}: {json.dumps(r[key])}")
    out.write_text(json.dumps(report, indent=2) + "\n")
    chart(report, results / "capacity.png")
    print("wrote bench/results/capacity.json and bench/results/capacity.png")
