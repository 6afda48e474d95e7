"""Round-trip latency through the real local stack.

Prints, over N turns, p50/p95 of
  (a) session request → agent joined the room, and
  (b) end of the caller's speech → first agent audio frame heard,
and writes them to bench/results/roundtrip.json.

    .venv/bin/python bench/roundtrip.py --sessions 10 --turns-per-session 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stimm.stack import LocalStack, ManagedProcess, StackOptions  # noqa: E402
from stimm.stack.process import free_port, http_ok  # noqa: E402
from tests.support.audio import synthesize  # noqa: E402
from tests.support.caller import Caller  # noqa: E402

QUESTIONS = ["When is the museum open?", "Is the museum open on Sunday?"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 0.50) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "mean_ms": round(statistics.fmean(values) * 1000, 1),
    }


async def run(stack: LocalStack, llm_url: str, sessions: int, turns: int) -> dict[str, list[float]]:
    joined: list[float] = []
    voice_to_voice: list[float] = []
    questions = [synthesize(q) for q in QUESTIONS]
    async with httpx.AsyncClient(base_url=stack.control_plane_url, timeout=30) as http:
        agent = (
            await http.post(
                "/api/agents",
                json={
                    "name": "Bench agent",
                    "instructions": "Answer in one short sentence.",
                    "greeting": "Hello, how can I help?",
                    "llm": {
                        "provider": "openai",
                        "model": "scripted",
                        "options": {"base_url": llm_url},
                    },
                },
            )
        ).json()
        for s in range(sessions):
            t0 = time.monotonic()
            sess = (await http.post("/api/sessions", json={"agent_id": agent["id"]})).json()
            caller = Caller()
            await caller.join(sess["livekit_url"], sess["token"])
            await asyncio.wait_for(caller.agent_joined.wait(), 60)
            assert caller.agent_joined_at is not None
            joined.append(caller.agent_joined_at - t0)
            await caller.next_utterance(timeout=60)  # greeting
            for t in range(turns):
                ended = await caller.say(questions[t % len(questions)])
                reply = await caller.next_utterance(timeout=60)
                voice_to_voice.append(reply.first_audio_at - ended)
            await caller.leave()
            print(
                f"session {s + 1}/{sessions}: joined {joined[-1] * 1000:.0f} ms, "
                f"last reply {voice_to_voice[-1] * 1000:.0f} ms",
                flush=True,
            )
    return {"joined": joined, "voice_to_voice": voice_to_voice}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--turns-per-session", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "roundtrip.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stimm-bench-") as tmp:
        run_dir = Path(tmp)
        rules = run_dir / "rules.json"
        rules.write_text(json.dumps([{"match": "museum", "reply": "The museum opens at ten."}]))
        port = free_port()
        llm = ManagedProcess(
            "fake-llm",
            [
                sys.executable,
                "-m",
                "tests.fakes.openai_server",
                "--port",
                str(port),
                "--rules",
                str(rules),
                "--reply",
                "I only know about the museum.",
            ],
            log_dir=run_dir / "logs",
            cwd=ROOT,
        )
        llm.start()
        try:
            llm_url = f"http://127.0.0.1:{port}/v1"
            llm.wait_ready(lambda: http_ok(f"{llm_url}/models"), timeout=30)
            with LocalStack(StackOptions(run_dir=run_dir / "stack", workers=1)) as stack:
                data = asyncio.run(run(stack, llm_url, args.sessions, args.turns_per_session))
        finally:
            llm.stop()

    result = {
        "benchmark": "roundtrip",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "providers": {
            "stt": "local whisper tiny.en",
            "llm": "scripted local OpenAI-compatible",
            "tts": "local piper en_US-joe-medium",
            "turn_detection": "vad",
        },
        "session_request_to_agent_joined": summary(data["joined"]),
        "end_of_speech_to_first_agent_audio": summary(data["voice_to_voice"]),
        "raw_s": data,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for key in ("session_request_to_agent_joined", "end_of_speech_to_first_agent_audio"):
        r = result[key]
        print(f"{key:40s} n={r['n']:3d}  p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
