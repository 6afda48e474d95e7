"""The worker's pipeline comes from config alone: keys from the agent's secrets, turn-taking
from ``turn_taking``, and every posted turn counted in the Prometheus metrics."""

from __future__ import annotations

from typing import Any

import pytest
from livekit.agents import llm
from livekit.agents.inference import TurnDetector
from livekit.plugins import deepgram, elevenlabs, openai, silero
from prometheus_client import REGISTRY

from stimm.schema import AgentConfig, ProviderSpec, TurnIn, TurnMetrics, TurnTaking
from worker.main import input_frame_ms
from worker.metrics import observe_turn
from worker.providers import MissingApiKeyError, build_llm, build_stt, build_tts
from worker.session import build_agent_session
from worker.turn_taking import load_turn_detector, turn_handling

pytestmark = pytest.mark.unit

HOSTED_KEYS = ("OPENAI_API_KEY", "GROQ_API_KEY", "DEEPGRAM_API_KEY", "ELEVEN_API_KEY")


@pytest.fixture(autouse=True)
def _no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in HOSTED_KEYS:
        monkeypatch.delenv(var, raising=False)


# --- secrets -----------------------------------------------------------------------------


async def test_keys_come_from_the_agent_secrets() -> None:
    secrets = {
        "GROQ_API_KEY": "groq-from-secrets",
        "DEEPGRAM_API_KEY": "dg-from-secrets",
        "ELEVEN_API_KEY": "eleven-from-secrets",
    }
    groq = build_llm(ProviderSpec(provider="groq"), secrets=secrets)
    dg = build_stt(ProviderSpec(provider="deepgram"), language="en", secrets=secrets)
    eleven = build_tts(
        ProviderSpec(provider="elevenlabs"), voice=None, language="en", secrets=secrets
    )
    assert isinstance(groq, openai.LLM) and groq._client.api_key == "groq-from-secrets"
    assert isinstance(dg, deepgram.STT) and dg._api_key == "dg-from-secrets"
    assert isinstance(eleven, elevenlabs.TTS) and eleven._opts.api_key == "eleven-from-secrets"
    for obj in (groq, dg, eleven):
        await obj.aclose()


async def test_secrets_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    model = build_llm(ProviderSpec(provider="openai"), secrets={"OPENAI_API_KEY": "from-secrets"})
    assert isinstance(model, openai.LLM) and model._client.api_key == "from-secrets"
    await model.aclose()


@pytest.mark.parametrize(
    ("role", "provider", "env_var"),
    [
        ("stt", "deepgram", "DEEPGRAM_API_KEY"),
        ("stt", "openai", "OPENAI_API_KEY"),
        ("tts", "elevenlabs", "ELEVEN_API_KEY"),
        ("tts", "deepgram", "DEEPGRAM_API_KEY"),
        ("tts", "openai", "OPENAI_API_KEY"),
    ],
)
def test_hosted_speech_provider_without_key_names_the_key(
    role: str, provider: str, env_var: str
) -> None:
    spec = ProviderSpec(provider=provider)
    with pytest.raises(MissingApiKeyError, match=env_var):
        if role == "stt":
            build_stt(spec, language="en")
        else:
            build_tts(spec, voice=None, language="en")


async def test_custom_base_url_never_gets_the_stored_key() -> None:
    secrets = {"DEEPGRAM_API_KEY": "real-key"}
    spec = ProviderSpec(provider="deepgram", options={"base_url": "http://127.0.0.1:9/v1/listen"})
    dg = build_stt(spec, language="en", secrets=secrets)
    assert isinstance(dg, deepgram.STT) and dg._api_key != "real-key"
    await dg.aclose()


# --- turn taking -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> TurnDetector:
    loaded = load_turn_detector()
    assert loaded is not None, "the offline end-of-turn model should load on this machine"
    return loaded


def test_turn_taking_comes_from_config(detector: TurnDetector) -> None:
    options = TurnTaking(
        turn_detection="vad",
        min_endpointing_delay=0.8,
        max_endpointing_delay=4.0,
        allow_interruptions=False,
        interruption_min_duration=1.2,
        preemptive_generation=False,
        preemptive_tts=False,
    )
    handling, used = turn_handling(options, detector)
    assert used == "vad" and handling["turn_detection"] == "vad"
    assert handling["endpointing"] == {"min_delay": 0.8, "max_delay": 4.0}
    assert handling["interruption"] == {"enabled": False, "mode": "vad", "min_duration": 1.2}
    assert handling["preemptive_generation"] == {"enabled": False, "preemptive_tts": False}


@pytest.mark.parametrize("mode", ["auto", "model"])
def test_model_turn_detection_when_the_model_loads(detector: TurnDetector, mode: Any) -> None:
    handling, used = turn_handling(TurnTaking(turn_detection=mode), detector)
    assert used == "model"
    assert handling["turn_detection"] is detector
    assert detector.model == "turn-detector-v1-mini"  # offline, never the cloud model


@pytest.mark.parametrize("mode", ["auto", "model"])
def test_vad_when_the_model_is_unavailable(mode: Any) -> None:
    handling, used = turn_handling(TurnTaking(turn_detection=mode), None)
    assert used == "vad" and handling["turn_detection"] == "vad"


async def test_session_reports_its_turn_detection_and_failover(detector: TurnDetector) -> None:
    config = AgentConfig.model_validate(
        {
            "name": "Guide",
            "instructions": "Help.",
            "llm": [
                {"provider": "ollama"},
                {"provider": "llamacpp", "options": {"timeout_s": 12}},
            ],
            "turn_taking": {"turn_detection": "auto", "min_endpointing_delay": 0.3},
        }
    )
    built = build_agent_session(config, vad_model=silero.VAD.load(), turn_detector=detector)
    assert built.turn_detection == "model"
    assert isinstance(built.agent_session.llm, llm.FallbackAdapter)
    assert built.agent_session.llm._attempt_timeout == 12.0
    assert built.agent_session.options.endpointing["min_delay"] == 0.3
    await built.agent_session.aclose()


# --- metrics -----------------------------------------------------------------------------


def _count(stage: str) -> float:
    return REGISTRY.get_sample_value("stimm_turn_stage_seconds_count", {"stage": stage}) or 0.0


def test_posted_turns_feed_the_prometheus_histograms() -> None:
    before = {s: _count(s) for s in ("llm_ttft", "retrieval", "e2e_latency", "tts_ttfb")}
    interrupted = REGISTRY.get_sample_value(
        "stimm_turns_total", {"role": "assistant", "interrupted": "true"}
    )
    observe_turn(
        TurnIn(
            role="assistant",
            text="Hello.",
            interrupted=True,
            metrics=TurnMetrics(llm_ttft=0.4, tts_ttfb=0.2, e2e_latency=1.1, retrieval=0.05),
        )
    )
    assert {s: _count(s) - before[s] for s in before} == {
        "llm_ttft": 1,
        "retrieval": 1,
        "e2e_latency": 1,
        "tts_ttfb": 1,
    }
    after = REGISTRY.get_sample_value(
        "stimm_turns_total", {"role": "assistant", "interrupted": "true"}
    )
    assert (after or 0) - (interrupted or 0) == 1


@pytest.mark.parametrize(("value", "expected"), [("", 20), ("10", 10), ("50", 50)])
def test_caller_audio_frame_size_from_env(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int
) -> None:
    monkeypatch.setenv("STIMM_WORKER_INPUT_FRAME_MS", value)
    assert input_frame_ms() == expected


@pytest.mark.parametrize("value", ["15", "0", "ten"])
def test_a_bad_caller_audio_frame_size_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STIMM_WORKER_INPUT_FRAME_MS", value)
    with pytest.raises(ValueError, match="STIMM_WORKER_INPUT_FRAME_MS"):
        input_frame_ms()


FIRST_CHAT = """
import asyncio, sys
import worker.main
from livekit.agents import APIConnectOptions, llm
from livekit.plugins import openai

async def first_chat() -> None:
    model = openai.LLM(model="m", base_url="http://127.0.0.1:9/v1", api_key="k")
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="When is the museum open?")
    try:
        async with model.chat(chat_ctx=ctx, conn_options=APIConnectOptions(max_retry=0)) as s:
            async for _ in s:
                pass
    except Exception:
        pass  # nothing listens there: the request itself is what imports

before = set(sys.modules)
asyncio.run(first_chat())
print(" ".join(sorted(m for m in set(sys.modules) - before if m.startswith("openai.resources"))))
"""


def test_a_job_processs_first_reply_imports_no_openai_client_code() -> None:
    # worker.main is what livekit's forkserver preloads for every job process
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", FIRST_CHAT], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "", f"imported at the first chat request: {out.stdout}"


JOB_START_TLS = """
import asyncio, ssl
import worker.main  # what livekit's forkserver preloads
from livekit.agents.utils import http_context
from stimm.schema import ProviderSpec
from worker.control_plane_client import ControlPlaneClient
from worker.providers import build_llm

made = []
create = ssl.create_default_context
def counting(*args, **kwargs):
    made.append(1)
    return create(*args, **kwargs)
ssl.create_default_context = counting

async def job_start() -> None:
    ControlPlaneClient("http://127.0.0.1:9", "token")
    spec = ProviderSpec(provider="openai", model="m", options={})
    build_llm(spec, secrets={"OPENAI_API_KEY": "k"})
    async with http_context.open():  # the speech plugins' session
        pass

asyncio.run(job_start())
print(len(made))
"""


def test_a_job_process_loads_no_certificates_as_its_call_starts() -> None:
    # each TLS context loads the CA store (~18 ms of CPU): the forkserver makes them once
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", JOB_START_TLS],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "0", f"TLS contexts made at job start: {out.stdout}"


PREWARM_RSS = """
import os
import livekit.agents.ipc._preload  # livekit's warm-up, as its forkserver runs it
import worker.main  # what the forkserver preloads

def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6

class Proc:
    userdata: dict = {}

read, write = os.pipe()
pid = os.fork()
if pid == 0:  # a job process, as the forkserver makes it
    before = rss_mb()
    worker.main.prewarm(Proc())
    os.write(write, f"{rss_mb() - before:.1f}".encode())
    os._exit(0)
os.waitpid(pid, 0)
print(os.read(read, 64).decode())
"""


def test_a_job_process_shares_the_forkservers_vad_model() -> None:
    # the ONNX Silero of livekit-plugins-silero loaded a copy per job process: +35 MB each
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", PREWARM_RSS], capture_output=True, text=True, timeout=120, check=True
    )
    assert float(out.stdout.strip()) < 5.0, f"prewarm grew the job process by {out.stdout} MB"
