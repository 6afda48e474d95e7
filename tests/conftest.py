"""Shared fixtures: the real local stack (Postgres, Redis, livekit-server, control plane, worker)
and a scripted OpenAI-compatible LLM server, each started by the test harness itself."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stimm.egress import ALLOW_ENV, LOOPBACK
from stimm.stack import LocalStack, StackOptions
from stimm.stack.postgres import drop_database, ensure_database
from testkit.fakes.openai_server import serve_in_process
from testkit.fakes.otlp_receiver import OtlpReceiver
from testkit.fakes.script import LLM_DEFAULT_REPLY, LLM_RULES

ARTIFACTS = Path(__file__).parent / "artifacts"

# The fake providers and webhooks the tests build agents against listen on loopback, which the
# egress policy refuses unless allowed, as `stimm dev` allows it for its worker.
os.environ.setdefault(ALLOW_ENV, LOOPBACK)


@pytest.fixture(scope="session")
def run_dir() -> Path:
    path = ARTIFACTS / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def fake_llm_url(run_dir: Path) -> Iterator[str]:
    """A local OpenAI-compatible server with scripted streaming answers, in its own process."""
    with serve_in_process(run_dir / "logs", rules=LLM_RULES, reply=LLM_DEFAULT_REPLY) as url:
        yield url


@pytest.fixture(scope="session")
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """Where the shared stack's control plane and worker send their traces."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack(run_dir: Path, otlp_receiver: OtlpReceiver) -> Iterator[LocalStack]:
    """The platform with a fresh Postgres database, exporting its traces to ``otlp_receiver``;
    torn down at the end of the session."""
    db_name = f"stimm_e2e_{os.getpid()}"
    database_url = ensure_database(db_name, fresh=True)
    s = LocalStack(
        StackOptions(
            run_dir=run_dir / "stack",
            database_url=database_url,
            workers=1,
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp_receiver.endpoint},
            # a job process per slot prewarmed, as the manifests run it: with one, concurrent
            # calls wait for cold processes, and one of them can be left silent (an open bug:
            # test_shared_models' four callers, run alone, reproduce it)
            worker_env={"STIMM_WORKER_IDLE_PROCESSES": "4"},
        )
    )
    s.start()
    yield s
    s.stop()
    drop_database(db_name)
