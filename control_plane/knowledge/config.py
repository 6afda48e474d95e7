"""Settings of the knowledge bases: where vectors live and how big an upload may be.

- ``STIMM_QDRANT_URL`` (+ ``STIMM_QDRANT_API_KEY``): a Qdrant server. Unset: Qdrant's embedded
  local mode in ``<data dir>/qdrant``, where the data dir is ``STIMM_DATA_DIR``, else the folder of
  the SQLite database, else ``.stimm``.
- ``STIMM_MAX_UPLOAD_BYTES``: the largest document accepted (default 10 MiB).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

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

    def qdrant_path(self, database_url: str) -> Path:
        """Folder of the embedded Qdrant store (used only when no server URL is set)."""
        if self.data_dir is not None:
            return self.data_dir / "qdrant"
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent / "qdrant"
        return DEFAULT_DATA_DIR / "qdrant"
