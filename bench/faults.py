"""Faults during a call, injected with toxiproxy: does the call survive, is any turn lost?

One local stack whose internal links go through toxiproxy (worker → control plane, control
plane → PostgreSQL and → Redis, worker → the scripted LLM). For each fault, ``--runs`` calls:
greeting, a question while the fault lasts, a question after it, hang up. Per fault it reports
whether every call survived (the question after the fault was answered), turns expected /
recorded / lost / duplicated in the session records, and the recovery time: fault end → every
turn spoken so far visible through the API. Figures go to bench/results/faults.json.

    .venv/bin/python bench/faults.py [--runs 1] [--faults control_plane_restarted,llm_slow]
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
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stimm.stack import LocalStack, StackOptions  # noqa: E402
from stimm.stack.postgres import drop_database, ensure_database  # noqa: E402
from testkit.fakes.openai_server import serve_in_process  # noqa: E402
from testkit.fakes.script import LLM_DEFAULT_REPLY, LLM_RULES  # noqa: E402
from testkit.faults import FAULTS, Outcome, agent_body, call_through  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "faults.json"


def summarize(fault: str, outcomes: list[Outcome]) -> dict[str, Any]:
    recoveries = [o.recovery_s for o in outcomes if o.recovery_s is not None]
    return {
        "fault": fault,
        "calls": len(outcomes),
        "calls_survived": sum(o.call_survived for o in outcomes),
        "turns_expected": sum(o.turns_expected for o in outcomes),
        "turns_recorded": sum(o.turns_recorded for o in outcomes),
        "turns_lost": sum(o.turns_lost for o in outcomes),
        "turns_duplicated": sum(o.turns_duplicated for o in outcomes),
        "recovery_s_median": round(statistics.median(recoveries), 2) if recoveries else None,
        "recovery_s_max": max(recoveries) if recoveries else None,
        "runs": [o.as_dict() for o in outcomes],
    }


async def run(stack: LocalStack, llm_url: str, faults: list[str], runs: int) -> list[Any]:
    assert stack.toxiproxy is not None
    port = stack.toxiproxy.create("llm", urlsplit(llm_url).port or 80)
    async with httpx.AsyncClient(
        base_url=stack.control_plane_url, headers=stack.api_headers, timeout=30
    ) as http:
        resp = await http.post("/api/agents", json=agent_body(f"http://127.0.0.1:{port}/v1"))
        resp.raise_for_status()
        agent_id = resp.json()["id"]
    rows = []
    for fault in faults:
        outcomes = []
        for _ in range(runs):
            outcomes.append(await call_through(stack, agent_id, fault))
            stack.toxiproxy.reset()
        rows.append(summarize(fault, outcomes))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    table = Table(title="Faults during a call (toxiproxy)")
    for column in ("fault", "survived", "turns exp/rec", "lost", "dup", "recovery s (med/max)"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["fault"],
            f"{r['calls_survived']}/{r['calls']}",
            f"{r['turns_expected']}/{r['turns_recorded']}",
            str(r["turns_lost"]),
            str(r["turns_duplicated"]),
            f"{r['recovery_s_median']} / {r['recovery_s_max']}",
        )
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULTS))
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {sorted(FAULTS)}")

    run_dir = Path(tempfile.mkdtemp(prefix="stimm-bench-faults-"))
    db_name = f"stimm_bench_faults_{os.getpid()}"
    started = time.monotonic()
    with serve_in_process(run_dir / "logs", rules=LLM_RULES, reply=LLM_DEFAULT_REPLY) as llm_url:
        stack = LocalStack(
            StackOptions(
                run_dir=run_dir / "stack",
                database_url=ensure_database(db_name, fresh=True),
                workers=1,
                toxiproxy=True,
            )
        )
        try:
            stack.start()
            rows = asyncio.run(run(stack, llm_url, faults, args.runs))
        finally:
            stack.stop()
            drop_database(db_name)
    print_table(rows)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "runs_per_fault": args.runs,
                "seconds": round(time.monotonic() - started, 1),
                "faults": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
