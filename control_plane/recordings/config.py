"""Settings of the recordings store.

- ``STIMM_RECORDINGS_S3_BUCKET`` set: recordings go to that bucket of an S3-compatible server
  (``STIMM_RECORDINGS_S3_ENDPOINT``, e.g. MinIO; AWS when empty), with
  ``STIMM_RECORDINGS_S3_ACCESS_KEY_ID`` / ``STIMM_RECORDINGS_S3_SECRET_ACCESS_KEY`` (or boto3's
  own credential chain when empty), ``STIMM_RECORDINGS_S3_REGION`` and
  ``STIMM_RECORDINGS_S3_PREFIX``. The bucket is created when missing.
- Otherwise a local folder: ``STIMM_RECORDINGS_DIR``, else ``<data dir>/recordings`` where the
  data dir is ``STIMM_DATA_DIR``, else the folder of the SQLite database, else ``.stimm``.
- ``STIMM_RECORDING_URL_TTL`` (300 s): how long a signed playback URL stays valid.
- ``STIMM_RECORDINGS_SWEEP_INTERVAL`` (3600 s): how often expired recordings are deleted.
- ``STIMM_MAX_RECORDING_BYTES`` (512 MiB): the largest upload a worker may send.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATA_DIR = Path(".stimm")
DEFAULT_MAX_RECORDING_BYTES = 512 * 1024 * 1024


class RecordingSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    recordings_dir: Path | None = Field(default=None, validation_alias="STIMM_RECORDINGS_DIR")
    data_dir: Path | None = Field(default=None, validation_alias="STIMM_DATA_DIR")
    s3_bucket: str | None = Field(default=None, validation_alias="STIMM_RECORDINGS_S3_BUCKET")
    s3_endpoint_url: str | None = Field(
        default=None, validation_alias="STIMM_RECORDINGS_S3_ENDPOINT"
    )
    s3_region: str = Field(default="us-east-1", validation_alias="STIMM_RECORDINGS_S3_REGION")
    s3_access_key_id: str | None = Field(
        default=None, validation_alias="STIMM_RECORDINGS_S3_ACCESS_KEY_ID"
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, validation_alias="STIMM_RECORDINGS_S3_SECRET_ACCESS_KEY"
    )
    s3_prefix: str = Field(default="recordings/", validation_alias="STIMM_RECORDINGS_S3_PREFIX")
    url_ttl_s: int = Field(
        default=300, ge=10, le=86_400, validation_alias="STIMM_RECORDING_URL_TTL"
    )
    sweep_interval_s: float = Field(
        default=3_600.0, ge=0.1, le=86_400, validation_alias="STIMM_RECORDINGS_SWEEP_INTERVAL"
    )
    max_bytes: int = Field(
        default=DEFAULT_MAX_RECORDING_BYTES, ge=1024, validation_alias="STIMM_MAX_RECORDING_BYTES"
    )

    def folder(self, database_url: str) -> Path:
        """The local store's folder (used only when no bucket is set)."""
        if self.recordings_dir is not None:
            return self.recordings_dir
        if self.data_dir is not None:
            return self.data_dir / "recordings"
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return Path(url.database).expanduser().parent / "recordings"
        return DEFAULT_DATA_DIR / "recordings"
