"""Settings of the worker pool view and of dispatch verification."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PoolSettings(BaseSettings):
    """Heartbeat expiry, lost-worker sweep and dispatch verification."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    worker_ttl_s: float = Field(default=10.0, ge=1, le=600, validation_alias="STIMM_WORKER_TTL")
    """A worker without a heartbeat for this long is gone; its active sessions fail."""
    sweep_interval_s: float = Field(
        default=2.0, ge=0.1, le=60, validation_alias="STIMM_WORKER_SWEEP_INTERVAL"
    )
    dispatch_timeout_s: float = Field(
        default=10.0, ge=1, le=120, validation_alias="STIMM_DISPATCH_TIMEOUT"
    )
    """How long a session request waits for a worker to take its job, re-dispatching."""
    dispatch_attempt_s: float = Field(
        default=2.0, ge=0.2, le=30, validation_alias="STIMM_DISPATCH_ATTEMPT_TIMEOUT"
    )
    """How long one dispatch may stay unassigned before it is dispatched again."""
