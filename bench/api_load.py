"""Control-plane throughput under a real HTTP load generator (wrk).

A local stack on PostgreSQL and Redis (no workers: what is measured is the API), ``--agents``
agents created through the API, then wrk against each endpoint for ``--duration`` seconds with
``--connections`` open connections: ``GET /health`` (the floor: no database), ``GET /api/agents``
(the console's agent list, authenticated) and ``GET /api/agents/{id}``. wrk and the control plane
share this machine's cores, as they would not in production: the figures are a floor.

Per endpoint: requests/s, latency p50/p99, non-2xx answers and socket errors.
bench/results/api_load.json.

    .venv/bin/python bench/api_load.py [--duration 15] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.profile import Profile  # noqa: E402
from bench.roundtrip import agent_body  # noqa: E402
from bench.stats import machine  # noqa: E402
from stimm.stack import LocalStack, StackOptions  # noqa: E402
from stimm.stack.postgres import ensure_database  # noqa: E402

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNIT_MS[unit], 2)


def parse_wrk(out: str) -> dict[str, Any]:
    """Requests/s, latency percentiles and errors from ``wrk --latency``'s report."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    pcts = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    if "50" not in pcts:
        raise RuntimeError(f"wrk printed no latency distribution:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: (.*)", out)
    total = re.search(r"(\d+) requests in", out)
    return {
        "requests_per_s": round(rps, 1),
        "requests": int(total.group(1)) if total else None,
        "latency_p50_ms": _ms(pcts["50"]),
        "latency_p90_ms": _ms(pcts["90"]),
        "latency_p99_ms": _ms(pcts["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sockets.group(1).strip() if sockets else None,
    }


def wrk(url: str, headers: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    cmd = ["wrk", "--latency", "-t", "1", "-c", str(args.connections), "-d", f"{args.duration}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def slug(endpoint: str) -> str:
    return re.sub(r"[^a-z]+", "-", endpoint.lower()).strip("-")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: scripts/install.sh --test-tools installs it")
    run_dir = Path(args.run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    stack = LocalStack(
        StackOptions(
            run_dir=run_dir,
            database_url=ensure_database("stimm_bench_api", fresh=True),
            workers=0,
            log_level="WARNING",
            # one key drives all the load: its per-minute request limit would answer 429s
            env={"STIMM_REQUESTS_PER_MINUTE_PER_KEY": "100000000"},
        )
    )
    results: dict[str, Any] = {}
    try:
        stack.start()
        async with httpx.AsyncClient(
            base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
        ) as http:
            ids = []
            for n in range(args.agents):
                body = agent_body("http://127.0.0.1:9/v1", {}, name=f"Agent {n:03d}")
                resp = await http.post("/api/agents", json=body)
                resp.raise_for_status()
                ids.append(resp.json()["id"])
            listed = (await http.get("/api/agents")).json()
        endpoints = {
            "GET /health": ("/health", {}),
            "GET /api/agents": ("/api/agents", stack.api_headers),
            "GET /api/agents/{id}": (f"/api/agents/{ids[0]}", stack.api_headers),
        }
        for name, (path, headers) in endpoints.items():
            time.sleep(1)
            pid = stack.process("control-plane").pid
            profile = (
                Profile(pid, run_dir / f"{slug(name)}.collapsed", idle=False, nonblocking=True)
                if args.profile and pid
                else None
            )
            results[name] = await asyncio.to_thread(
                wrk, stack.control_plane_url + path, headers, args
            )
            if profile is not None:
                results[name]["profile"] = profile.stop(within="run_asgi", top=40)
            print(f"  {name:22s} {json.dumps(results[name])}", flush=True)
    finally:
        stack.stop()
    return {
        "benchmark": "api_load",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "generator": f"wrk, 1 thread, {args.connections} connections, {args.duration} s each",
        "database": "PostgreSQL (local), Redis",
        "agents": args.agents,
        "agents_listed": len(listed["items"]),  # what one GET /api/agents returns
        "results": results,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=32, help="open connections")
    parser.add_argument("--agents", type=int, default=25, help="agents in the list")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the control plane under each endpoint"
    )
    parser.add_argument(
        "--run-dir", default=str(ROOT / ".stimm" / "bench-api"), help="logs and data"
    )
    return parser.parse_args()


if __name__ == "__main__":
    cli_args = parse_args()
    report = asyncio.run(main(cli_args))
    for endpoint, r in report["results"].items():
        print(
            f"{endpoint:22s}: {r['requests_per_s']} requests/s, p50 {r['latency_p50_ms']} ms, "
            f"p99 {r['latency_p99_ms']} ms, non-2xx {r['non_2xx']}"
        )
    out = ROOT / "bench" / "results" / "api_load.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
