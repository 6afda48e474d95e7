"""Runs an agent's scenarios in a child process: ``python -m worker.scenarios``.

The control plane never imports the worker (they share only ``stimm/``); the child is a fresh
interpreter from the same installation (one image runs both), its job (the config with its
secrets' values, and the suite) comes on its stdin, never in its arguments or environment, and
its ``SuiteResult`` goes back as JSON on its stdout. A run that outlives
``STIMM_SCENARIO_TIMEOUT_S`` is killed; at most ``STIMM_SCENARIO_MAX_RUNS`` run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from control_plane.errors import (
    ScenarioAgentUnbuildable,
    ScenarioRunError,
    ScenarioRunsBusy,
    ScenarioTimeout,
)
from stimm.scenarios import ScenarioJob, SuiteResult

logger = logging.getLogger("stimm.control_plane")

RUNNER_MODULE = "worker.scenarios"
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])


class ScenarioRunner:
    """Runs scenario jobs in child processes, a bounded number at a time.

    Args:
        timeout_s: How long one run may take.
        max_runs: Runs at once; one more is refused with ``ScenarioRunsBusy``.
    """

    def __init__(self, *, timeout_s: float, max_runs: int) -> None:
        self.timeout_s = timeout_s
        self.max_runs = max_runs
        self._running = 0

    async def run(self, job: ScenarioJob) -> SuiteResult:
        """Run ``job``'s suite against its agent.

        Raises:
            ScenarioRunsBusy: ``max_runs`` runs are going on.
            ScenarioTimeout: The run took longer than ``timeout_s``.
            ScenarioAgentUnbuildable: The agent's or the judge's LLM cannot be built.
            ScenarioRunError: The child stopped without a result.
        """
        if self._running >= self.max_runs:
            raise ScenarioRunsBusy(
                f"{self.max_runs} scenario run(s) are already going on "
                "(STIMM_SCENARIO_MAX_RUNS); try again when they are done"
            )
        self._running += 1
        try:
            return await self._run(job)
        finally:
            self._running -= 1

    async def _run(self, job: ScenarioJob) -> SuiteResult:
        python_path = os.pathsep.join(filter(None, [_SOURCE_ROOT, os.environ.get("PYTHONPATH")]))
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            RUNNER_MODULE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": python_path},
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                out, err = await child.communicate(job.model_dump_json().encode())
        except TimeoutError:
            raise ScenarioTimeout(
                f"The scenarios took longer than {self.timeout_s:g} s (STIMM_SCENARIO_TIMEOUT_S)"
            ) from None
        finally:
            # also when the request is cancelled: the child must not outlive it
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        if child.returncode != 0:
            last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            logger.error("scenario run exited with %s: %s", child.returncode, last[:500])
            raise ScenarioRunError(
                f"The scenario run stopped unexpectedly (exit code {child.returncode})"
            )
        try:
            data = json.loads(out)
            if isinstance(data, dict) and "error" in data:
                problem = str(data["error"])
            else:
                return SuiteResult.model_validate(data)
        except (ValueError, ValidationError) as e:
            raise ScenarioRunError("The scenario run answered something unreadable") from e
        raise ScenarioAgentUnbuildable(f"The agent cannot be run: {problem}")
