"""Settings of the knowledge bases: where vectors live and how big an upload may be.

- ``STIMM_QDRANT_URL`` (+ ``STIMM_QDRANT_API_KEY``): a Qdrant server. Unset: Qdrant's embedded
  local mode in ``<data dir>/qdrant``, where the data dir is ``STIMM_DATA_DIR``, else the folder of
  the SQLite database, else ``.stimm``.
- ``STIMM_MAX_UPLOAD_BYTES``: the largest document accepted (default 10 MiB).
- Bounds of one document's extraction (past one it fails with the reason):
  ``STIMM_INGESTION_MAX_TEXT_MB`` (50: unpacked text, and a DOCX's unpacked XML),
  ``STIMM_INGESTION_MAX_PAGES`` (2000), ``STIMM_INGESTION_MAX_PARAGRAPHS`` (50000),
  ``STIMM_INGESTION_MAX_CHUNKS`` (10000), ``STIMM_INGESTION_MEMORY_MB`` (1024: address space of
  the extraction child process) and ``STIMM_INGESTION_TIMEOUT_S`` (60).
- The ingestion queue: ``STIMM_INGESTION_MAX_QUEUED`` (100 documents waiting or in progress in
  all) and ``STIMM_INGESTION_MAX_QUEUED_PER_KB`` (20 per knowledge base); past them an upload
  gets 429. ``STIMM_INGESTION_LEASE_S`` (60): a document left "processing" without a heartbeat
  for this long (its control plane was killed) is taken up again by any replica.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from control_plane.knowledge.extraction import ExtractionLimits

DEFAULT_DATA_DIR = Path(".stimm")
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class KnowledgeSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    qdrant_url: str | None = Field(default=None, validation_alias="STIMM_QDRANT_URL")
    qdrant_api_key: SecretStr | None = Field(default=None, validation_alias="STIMM_QDRANT_API_KEY")
    data_dir: Path | None = Field(default=None, validation_alias="STIMM_DATA_DIR")
    max_upload_bytes: int = Field(
        default=DEFAULT_MAX_UPLOAD_BYTES, ge=1, validation_alias="STIMM_MAX_UPLOAD_BYTES"
    )

    max_text_mb: int = Field(default=50, ge=1, validation_alias="STIMM_INGESTION_MAX_TEXT_MB")
    max_pages: int = Field(default=2_000, ge=1, validation_alias="STIMM_INGESTION_MAX_PAGES")
    max_paragraphs: int = Field(
        default=50_000, ge=1, validation_alias="STIMM_INGESTION_MAX_PARAGRAPHS"
    )
    max_chunks: int = Field(default=10_000, ge=1, validation_alias="STIMM_INGESTION_MAX_CHUNKS")
    memory_mb: int = Field(default=1_024, ge=256, validation_alias="STIMM_INGESTION_MEMORY_MB")
    timeout_s: float = Field(default=60.0, gt=0, validation_alias="STIMM_INGESTION_TIMEOUT_S")
    max_queued: int = Field(default=100, ge=1, validation_alias="STIMM_INGESTION_MAX_QUEUED")
    max_queued_per_kb: int = Field(
        default=20, ge=1, validation_alias="STIMM_INGESTION_MAX_QUEUED_PER_KB"
    )
    lease_s: float = Field(default=60.0, ge=1, validation_alias="STIMM_INGESTION_LEASE_S")

    def limits(self) -> ExtractionLimits:
        return ExtractionLimits(
            max_text_mb=self.max_text_mb,
            max_pages=self.max_pages,
            max_paragraphs=self.max_paragraphs,
            max_chunks=self.max_chunks,
            memory_mb=self.memory_mb,
            timeout_s=self.timeout_s,
        )

    def qdrant_path(self, database_url: str) -> Path:
        """Folder of the embedded Qdrant store (used only when no server URL is set)."""
        if self.data_dir is not None:
            return self.data_dir / "qdrant"
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent / "qdrant"
        return DEFAULT_DATA_DIR / "qdrant"
