"""The config an agent runs with: its ``{"secret": NAME}`` references replaced by the values.

Only two things get it: the worker, for one call (``GET /api/worker/agents/{id}``), and the
child process that runs the agent's test scenarios.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.agent_secrets import inline_secrets, secret_refs
from control_plane.errors import SecretMissing
from control_plane.security import SecretBox
from control_plane.validation import secret_names
from stimm.schema import AgentConfig, WorkerAgentConfig


async def worker_agent_config(
    db: AsyncSession,
    box: SecretBox,
    agent_id: str,
    config: AgentConfig,
    *,
    also: Iterable[str] = (),
) -> WorkerAgentConfig:
    """``config`` with its secrets' values, and the provider keys its providers need.

    Args:
        also: Further secrets to decrypt into ``secrets`` (a scenario file's judge LLM).

    Raises:
        SecretDecryptionError: A secret does not decrypt with ``STIMM_SECRET_KEY``.
        SecretMissing: The config refers to a secret that is not set.
    """
    needed = secret_names(config) | set(also)
    refs = secret_refs(config)
    values = await credentials.decrypt_secrets(db, box, needed | set(refs))
    try:
        config = inline_secrets(config, values)
    except KeyError as e:
        raise SecretMissing(
            f"Agent {agent_id} refers to secret {e.args[0]}, which is not set"
        ) from e
    provider_keys = {name: value for name, value in values.items() if name in needed}
    return WorkerAgentConfig(id=agent_id, secrets=provider_keys, **config.model_dump())
