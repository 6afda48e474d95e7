"""Round-trip latency through the real local stack, with a per-stage breakdown.

Runs agent variants against the same stack (offline Whisper STT, Piper TTS):

- ``default-agent``: the agent ``stimm dev`` creates, exactly as shipped: the embedded offline
  LLM (SmolLM2-135M on llama.cpp, ``stimm llm``), so its figures include real generation;
- ``plain``: a scripted LLM that answers at once, no knowledge base;
- ``instant``: streaming providers that cost nothing: local fakes of Deepgram STT (a canned
  transcript once the caller has been silent for the endpointing the client asks for, as
  Deepgram does: 25 ms from livekit's plugin) and ElevenLabs TTS (speech
  synthesized before the run), the scripted LLM: what is left is the platform's own latency;
- ``livekit-instant``: the same instant providers in a plain livekit-agents worker
  (``bench/plain_worker.py``), dispatched into a room of its own, for comparison;
- ``long-reply`` / ``long-reply-sentence``: the scripted LLM answers with a long first sentence
  ("The current exhibition, which opened last spring, shows ..."); the offline voice speaks its
  first clause as soon as it is complete (the default), or waits for the whole first sentence
  (``turn_taking.early_first_clause = false``);
- ``knowledge-base``: ``plain`` with a knowledge base, as an agent has it by default: retrieval
  started on the transcripts, preemptive generation on;
- ``rag-speculative``: a knowledge base, retrieval started on the transcripts
  (``rag.speculative = true``);
- ``rag-at-turn-end``: the same knowledge base, retrieval only when the turn ends
  (``rag.speculative = false``).

The two ``rag-*`` variants run with preemptive generation off, so retrieval is not hidden behind a
preemptive reply and the two variants differ only in when retrieval starts.

For each variant it prints p50/p95 of
  (a) session request → agent joined the room,
  (b) end of the caller's speech → first agent audio frame heard (measured by the caller),
  (c) each stage the worker recorded per turn (``TurnMetrics``: end-of-turn delay, STT delay,
      LLM time to first token, TTS time to first byte, voice-to-voice, retrieval wait),
and writes them to bench/results/roundtrip.json.

    .venv/bin/python bench/roundtrip.py --sessions 5 --turns-per-session 2 [--turn-detection model]

The offline Whisper STT publishes a final transcript at each pause of the caller
(``worker/providers/pause_stt.py``), in a 10-s window for short speech: speculation starts on it,
before the endpointing delay has run out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.plain_worker import GREETING, open_room  # noqa: E402
from bench.stats import pct  # noqa: E402
from stimm.devseed import default_agent  # noqa: E402
from stimm.stack import LocalStack, ManagedProcess, StackOptions  # noqa: E402
from testkit.audio import synthesize  # noqa: E402
from testkit.caller import Caller  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.fakes.speech_server import FakeSpeechServer, synthesized  # noqa: E402

QUESTIONS = ["When is the museum open?", "Is the museum open on Sunday?"]
LONG_QUESTIONS = ["What is on show at the exhibition?", "Tell me about the exhibition."]
LONG_REPLY = (
    "The current exhibition, which opened last spring, shows paintings and photographs from "
    "the early twentieth century. It closes in May."
)
DOCUMENT = (
    "Museum opening hours.\n\nThe museum opens at ten every morning and closes at six.\n\n"
    "On Sundays the museum is open from noon until five in the afternoon.\n"
)
INSTANT_REPLY = "The museum opens at ten."
INSTANT_TTS_RATE = 24_000
"""ElevenLabs' pcm_24000, what the worker asks the fake for."""
PLAIN_AGENT = "plain-instant-bench"
USER_STAGES = ("end_of_turn_delay", "transcription_delay")
ASSISTANT_STAGES = ("llm_ttft", "tts_ttfb", "e2e_latency", "retrieval")


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 0.50) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


def agent_body(llm_url: str, turn_taking: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "Bench agent",
        "instructions": "Answer in one short sentence.",
        "greeting": "Hello, how can I help?",
        "llm": {"provider": "openai", "model": "scripted", "options": {"base_url": llm_url}},
        "turn_taking": turn_taking,
        **extra,
    }


async def knowledge_base(http: httpx.AsyncClient) -> str:
    kb = (await http.post("/api/knowledge-bases", json={"name": "Bench museum"})).json()
    doc = (
        await http.post(
            f"/api/knowledge-bases/{kb['id']}/documents",
            files={"file": ("hours.txt", DOCUMENT.encode(), "text/plain")},
        )
    ).json()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = (await http.get(f"/api/knowledge-bases/{kb['id']}/documents/{doc['id']}")).json()
        if status["status"] == "ready":
            return str(kb["id"])
        if status["status"] == "failed":
            raise RuntimeError(f"ingestion failed: {status}")
        await asyncio.sleep(0.5)
    raise RuntimeError("ingestion did not finish")


async def stage_figures(http: httpx.AsyncClient, session_id: str) -> dict[str, list[float]]:
    """The worker's per-turn figures from the session record (once it is closed)."""
    deadline = time.monotonic() + 30
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        record = (await http.get(f"/api/sessions/{session_id}")).json()
        if record.get("status") in ("completed", "failed", "abandoned"):
            break
        await asyncio.sleep(0.5)
    out: dict[str, list[float]] = {s: [] for s in USER_STAGES + ASSISTANT_STAGES}
    for turn in record.get("turns", []):
        stages = USER_STAGES if turn["role"] == "user" else ASSISTANT_STAGES
        for stage in stages:
            value = (turn.get("metrics") or {}).get(stage)
            if value is not None:
                out[stage].append(float(value))
    return out


OpenSession = Callable[[], Awaitable[tuple[str, str, str | None]]]
"""Starts one session: (LiveKit URL, caller token, Stimm session id or None)."""


def stimm_sessions(http: httpx.AsyncClient, agent_id: str) -> OpenSession:
    async def open_session() -> tuple[str, str, str | None]:
        sess = (await http.post("/api/sessions", json={"agent_id": agent_id})).json()
        return sess["livekit_url"], sess["token"], sess["session_id"]

    return open_session


def plain_sessions(stack: LocalStack) -> OpenSession:
    """Rooms with an explicit dispatch of the plain worker (no Stimm session record)."""

    async def open_session() -> tuple[str, str, str | None]:
        url, token = await open_room(stack, PLAIN_AGENT)
        return url, token, None

    return open_session


async def run_variant(
    http: httpx.AsyncClient,
    label: str,
    open_session: OpenSession,
    sessions: int,
    turns: int,
    asked: list[str] = QUESTIONS,
) -> dict[str, list[float]]:
    data: dict[str, list[float]] = {"joined": [], "voice_to_voice": []}
    session_ids: list[str] = []
    questions = [synthesize(q) for q in asked]
    for s in range(sessions):
        t0 = time.monotonic()
        url, token, session_id = await open_session()
        caller = Caller()
        await caller.join(url, token)
        await asyncio.wait_for(caller.agent_joined.wait(), 60)
        assert caller.agent_joined_at is not None
        data["joined"].append(caller.agent_joined_at - t0)
        await caller.next_utterance(timeout=60)  # greeting
        for t in range(turns):
            ended = await caller.say(questions[t % len(questions)])
            reply = await caller.next_utterance(timeout=60)
            data["voice_to_voice"].append(reply.first_audio_at - ended)
        await caller.leave()
        if session_id is not None:
            session_ids.append(session_id)
        print(
            f"{label}: session {s + 1}/{sessions}: joined {data['joined'][-1] * 1000:.0f} ms, "
            f"last reply {data['voice_to_voice'][-1] * 1000:.0f} ms",
            flush=True,
        )
    # read once every session is over: each record is closed by then, no waiting per session
    for session_id in session_ids:
        for stage, values in (await stage_figures(http, session_id)).items():
            data.setdefault(stage, []).extend(values)
    return data


def plain_worker(stack: LocalStack, llm_url: str, speech_url: str) -> ManagedProcess:
    proc = ManagedProcess(
        "plain-worker",
        [
            sys.executable,
            str(ROOT / "bench" / "plain_worker.py"),
            *("--agent-name", PLAIN_AGENT, "--llm-url", llm_url, "--speech-url", speech_url),
        ],
        log_dir=stack.log_dir,
        env=stack.service_env(),
        cwd=ROOT,
    )
    proc.start()
    proc.wait_ready(lambda: "registered worker" in proc.log_tail(400), timeout=120)
    return proc


async def run(
    stack: LocalStack,
    llm_url: str,
    sessions: int,
    turns: int,
    rag: bool,
    turn_detection: str,
    only: set[str] | None,
) -> dict[str, dict[str, list[float]]]:
    async with (
        httpx.AsyncClient(
            base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
        ) as http,
        FakeSpeechServer(canned_transcript=QUESTIONS[0], endpoint_silence_s=None) as speech,
    ):
        # the instant providers' answers exist before the first turn: nothing is computed later
        for text in (INSTANT_REPLY, GREETING):
            await asyncio.to_thread(synthesized, text, INSTANT_TTS_RATE)
        taking = {"turn_detection": turn_detection}
        shipped = {**default_agent(), "name": "Bench default agent", "turn_taking": taking}
        instant = agent_body(
            llm_url,
            taking,
            stt={"provider": "deepgram", "options": {"base_url": f"{speech.url}/v1/listen"}},
            tts={"provider": "elevenlabs", "options": {"base_url": f"{speech.url}/v1"}},
        )
        bodies: dict[str, dict[str, Any]] = {
            "default-agent": shipped,
            "plain": agent_body(llm_url, taking),
            "instant": instant,
            "long-reply": agent_body(llm_url, taking),
            "long-reply-sentence": agent_body(llm_url, {**taking, "early_first_clause": False}),
        }
        if rag:
            kb_id = await knowledge_base(http)
            bodies["knowledge-base"] = agent_body(
                llm_url, taking, knowledge_base_id=kb_id, rag={"top_k": 2, "speculative": True}
            )
            for label, speculative in (("rag-speculative", True), ("rag-at-turn-end", False)):
                bodies[label] = agent_body(
                    llm_url,
                    {**taking, "preemptive_generation": False},
                    knowledge_base_id=kb_id,
                    rag={"top_k": 2, "speculative": speculative},
                )
        results: dict[str, dict[str, list[float]]] = {}
        for label, body in bodies.items():
            if only and label not in only:
                continue
            agent = (await http.post("/api/agents", json=body)).json()
            opener = stimm_sessions(http, agent["id"])
            asked = LONG_QUESTIONS if label.startswith("long-reply") else QUESTIONS
            results[label] = await run_variant(http, label, opener, sessions, turns, asked)
        if not only or "livekit-instant" in only:
            worker = await asyncio.to_thread(plain_worker, stack, llm_url, speech.url)
            try:
                results["livekit-instant"] = await run_variant(
                    http, "livekit-instant", plain_sessions(stack), sessions, turns
                )
            finally:
                await asyncio.to_thread(worker.stop)
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5, help="sessions per variant")
    parser.add_argument("--turns-per-session", type=int, default=2)
    parser.add_argument("--no-rag", action="store_true", help="only the plain variant")
    parser.add_argument(
        "--turn-detection",
        choices=["auto", "model", "vad"],
        default="vad",
        help="the agents' turn_taking.turn_detection",
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        help="only these (default-agent plain instant long-reply long-reply-sentence "
        "knowledge-base rag-speculative rag-at-turn-end livekit-instant)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "roundtrip.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stimm-bench-") as tmp:
        run_dir = Path(tmp)
        rules = [
            {"match": "museum", "reply": INSTANT_REPLY},
            {"match": "exhibition", "reply": LONG_REPLY},
        ]
        with (
            serve_in_process(
                run_dir / "logs", rules=rules, reply="I only know about the museum."
            ) as llm_url,
            LocalStack(StackOptions(run_dir=run_dir / "stack", workers=1, llm=True)) as stack,
        ):
            data = asyncio.run(
                run(
                    stack,
                    llm_url,
                    args.sessions,
                    args.turns_per_session,
                    not args.no_rag,
                    args.turn_detection,
                    set(args.variants) if args.variants else None,
                )
            )

    variants: dict[str, dict[str, Any]] = {
        label: {
            "session_request_to_agent_joined": summary(figures["joined"]),
            "end_of_speech_to_first_agent_audio": summary(figures["voice_to_voice"]),
            "stages": {
                stage: summary(figures.get(stage, [])) for stage in USER_STAGES + ASSISTANT_STAGES
            },
        }
        for label, figures in data.items()
    }
    result = {
        "benchmark": "roundtrip",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "providers": {
            "stt": "local whisper tiny.en, a final per pause (10-s window up to 5 s of speech)",
            "llm": "default-agent: embedded SmolLM2-135M-Instruct Q4_1 (llama.cpp, 1 thread); "
            "others: scripted local OpenAI-compatible",
            "instant": "fake Deepgram STT (canned, final after the client's endpointing: 25 ms) + "
            "scripted LLM + "
            "fake ElevenLabs TTS (pre-synthesized); instant = Stimm worker, livekit-instant = "
            "plain livekit-agents worker",
            "tts": "local piper en_US-joe-medium",
            "turn_detection": args.turn_detection,
        },
        "variants": variants,
        "raw_s": data,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for label, v in variants.items():
        print(f"== {label}")
        rows = {
            "session request -> agent joined": v["session_request_to_agent_joined"],
            "end of speech -> first audio (caller)": v["end_of_speech_to_first_agent_audio"],
            **{f"  stage {k}": r for k, r in v["stages"].items()},
        }
        for name, r in rows.items():
            if r["n"]:
                p50, p95 = r["p50_ms"], r["p95_ms"]
                print(f"{name:40s} n={r['n']:3d}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
