"""Settings of post-call work: the analysis and the webhook deliveries.

- ``STIMM_ANALYSIS_TIMEOUT_S`` (60): how long the agent's LLM may take to analyse a call;
  ``STIMM_ANALYSIS_MAX_ATTEMPTS`` (3): tries when the LLM cannot be reached (a malformed
  answer is not tried again: it is reported on the session).
- ``STIMM_WEBHOOK_TIMEOUT_S`` (10): how long an endpoint may take to answer;
  ``STIMM_WEBHOOK_MAX_ATTEMPTS`` (8), ``STIMM_WEBHOOK_RETRY_BASE_S`` (5) and
  ``STIMM_WEBHOOK_RETRY_MAX_S`` (3600): a failed delivery is tried again after 5 s, 10 s,
  20 s ... at most an hour apart, then marked failed (the console can resend it).
- ``STIMM_LOCAL_LLM_URL``: where the embedded LLM answers, for agents that use it.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from control_plane.jobs import RetryPolicy
from stimm.local_llm import DEFAULT_PORT as LOCAL_LLM_PORT


class PostCallSettings(BaseSettings):
    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", env_ignore_empty=True)

    analysis_timeout_s: float = Field(
        default=60.0, gt=0, validation_alias="STIMM_ANALYSIS_TIMEOUT_S"
    )
    analysis_max_attempts: int = Field(
        default=3, ge=1, le=20, validation_alias="STIMM_ANALYSIS_MAX_ATTEMPTS"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, validation_alias="STIMM_WEBHOOK_TIMEOUT_S")
    webhook_max_attempts: int = Field(
        default=8, ge=1, le=50, validation_alias="STIMM_WEBHOOK_MAX_ATTEMPTS"
    )
    webhook_retry_base_s: float = Field(
        default=5.0, gt=0, validation_alias="STIMM_WEBHOOK_RETRY_BASE_S"
    )
    webhook_retry_max_s: float = Field(
        default=3_600.0, gt=0, validation_alias="STIMM_WEBHOOK_RETRY_MAX_S"
    )
    local_llm_url: str = Field(
        default=f"http://127.0.0.1:{LOCAL_LLM_PORT}/v1", validation_alias="STIMM_LOCAL_LLM_URL"
    )

    def analysis_retry(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.analysis_max_attempts, base_s=5.0, max_s=60.0)

    def webhook_retry(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.webhook_max_attempts,
            base_s=self.webhook_retry_base_s,
            max_s=self.webhook_retry_max_s,
        )
