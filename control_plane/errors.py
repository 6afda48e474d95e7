"""Errors raised by the control plane. Routes turn them into HTTP responses."""

from __future__ import annotations

from typing import ClassVar


class ControlPlaneError(Exception):
    """Base class for every error the control plane raises on purpose."""

    retryable: ClassVar[bool] = False


class ConfigError(ControlPlaneError):
    """The settings are unusable (missing or placeholder secret, unsupported database URL)."""


class LiveKitError(ControlPlaneError):
    """A call to the LiveKit server API failed."""


class LiveKitUnavailable(LiveKitError):
    """LiveKit could not be reached, timed out, or answered with a server error."""

    retryable = True


class LiveKitRejected(LiveKitError):
    """LiveKit answered but refused the request (bad credentials, invalid request)."""


class SessionStateConflict(ControlPlaneError):
    """A lifecycle event does not apply to the session's current status."""


class IdempotencyKeyInUse(ControlPlaneError):
    """Another session of the same API key holds this ``Idempotency-Key`` (a concurrent
    request with the same key won)."""


class SessionClaimed(ControlPlaneError):
    """Another job already answers the session, or it has ended."""


class SecretDecryptionError(ControlPlaneError):
    """A stored secret does not decrypt with the configured ``STIMM_SECRET_KEY``."""


class AgentInUse(ControlPlaneError):
    """An agent cannot be deleted because sessions refer to it."""


class DefaultAgentConflict(ControlPlaneError):
    """Concurrent requests kept changing the default agent; retrying may succeed."""

    retryable = True


class LastActiveApiKey(ControlPlaneError):
    """Revoking this key would leave no active API key: nobody could use the API any more."""


class RecordingStoreError(ControlPlaneError):
    """The recordings store (folder or bucket) failed to keep, read or delete a file."""

    retryable = True


class SecretMissing(ControlPlaneError):
    """An agent's config refers to a secret that is not set."""


class ScenarioRunError(ControlPlaneError):
    """An agent's test scenarios could not be run to their end."""


class ScenarioRunsBusy(ScenarioRunError):
    """As many scenario runs as ``STIMM_SCENARIO_MAX_RUNS`` are already going on."""

    retryable = True


class ScenarioTimeout(ScenarioRunError):
    """A run took longer than ``STIMM_SCENARIO_TIMEOUT_S``."""


class ScenarioAgentUnbuildable(ScenarioRunError):
    """The agent's (or the judge's) LLM cannot be built from its config."""
