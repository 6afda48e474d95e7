"""How fast a phone call is answered, through the real stack and livekit-sip, SIPp as the phone.

For each call it measures, from the caller's side:
  (a) INVITE sent → 200 OK received (livekit-sip answered; the room exists, the agent is being
      dispatched),
  (b) INVITE sent → first agent RTP packet received (whatever livekit-sip sends, silence too),
  (c) INVITE sent → first agent RTP that carries voice (the greeting starts),
prints p50/p95 and writes bench/results/sip_answer.json.

    .venv/bin/python bench/sip_answer.py --calls 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import pct  # noqa: E402
from stimm.stack import LocalStack, StackOptions  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.rtp import RtpReceiver  # noqa: E402
from testkit.sipp import caller_scenario, run_sipp  # noqa: E402

NUMBER = "+15550100"


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": round(pct(values, 0.5) * 1000, 1),
        "p95_ms": round(pct(values, 0.95) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


async def one_call(stack: LocalStack, workdir: Path, listen_s: float) -> dict[str, float | None]:
    receiver = RtpReceiver()
    try:
        sipp = run_sipp(
            workdir,
            caller_scenario([("pause", listen_s)]),
            remote=f"127.0.0.1:{stack.options.sip_port}",
            service=NUMBER,
            rtp_port=receiver.port,
        )
        code = await asyncio.to_thread(sipp.wait, listen_s + 60)
    finally:
        receiver.close()
    if code != 0:
        raise RuntimeError(f"SIPp failed (exit {code}); see {workdir}")
    timeline = sipp.timeline()
    invite = next(t for t, line in timeline if line.startswith("INVITE "))
    ok = next(t for t, line in timeline if line.startswith("SIP/2.0 200"))
    first_rtp = receiver.packets[0][0] if receiver.packets else None
    voice = receiver.first_voice_at()
    return {
        "invite_to_200": ok - invite,
        "invite_to_first_rtp": None if first_rtp is None else first_rtp - invite,
        "invite_to_first_voice": None if voice is None else voice - invite,
    }


async def run(stack: LocalStack, llm_url: str, calls: int, listen_s: float, out: Path) -> None:
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        agent = (
            await http.post(
                "/api/agents",
                json={
                    "name": "Bench phone agent",
                    "instructions": "Answer in one short sentence.",
                    "greeting": "Hello, thanks for calling. How can I help?",
                    "llm": {
                        "provider": "openai",
                        "model": "scripted",
                        "options": {"base_url": llm_url},
                    },
                },
            )
        ).json()
        resp = await http.post(
            "/api/phone-numbers", json={"number": NUMBER, "agent_id": agent["id"]}
        )
        resp.raise_for_status()
    results: list[dict[str, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="sip-bench-") as tmp:
        for i in range(calls):
            r = await one_call(stack, Path(tmp) / f"call-{i}", listen_s)
            results.append(r)
            print(
                f"call {i + 1}: INVITE→200 OK {r['invite_to_200'] * 1000:.0f} ms, "  # type: ignore[operator]
                f"INVITE→first RTP {_ms(r['invite_to_first_rtp'])}, "
                f"INVITE→first voice {_ms(r['invite_to_first_voice'])}"
            )
            await asyncio.sleep(1.0)
    figures: dict[str, Any] = {
        key: summary([v for r in results if (v := r[key]) is not None])
        for key in ("invite_to_200", "invite_to_first_rtp", "invite_to_first_voice")
    }
    report = {
        "calls": calls,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": figures,
        "per_call": results,
    }
    print(json.dumps(figures, indent=2))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


def _ms(value: float | None) -> str:
    return "none" if value is None else f"{value * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--listen", type=float, default=8.0, help="seconds each call lasts")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sip_answer.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="stimm-sip-bench-") as tmp:
        run_dir = Path(tmp)
        stack = LocalStack(StackOptions(run_dir=run_dir / "stack", workers=1, sip=True))
        with serve_in_process(run_dir / "logs") as llm_url:
            try:
                started = time.monotonic()
                stack.start()
                print(f"stack with livekit-sip up in {time.monotonic() - started:.1f}s")
                asyncio.run(run(stack, llm_url, args.calls, args.listen, args.out))
            finally:
                stack.stop()


if __name__ == "__main__":
    main()
