"""API keys and webhook and MCP header values in agent configs, kept in the secrets store.

An agent config never holds them in plaintext: a value a client sends is stored as a secret of
its own and the config keeps a ``{"secret": NAME}`` reference, which is all any route returns.
Only the worker's route puts the values back, for the one call it loads the config for.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Any, get_args

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane import credentials
from control_plane.models import Agent
from control_plane.security import SecretBox
from stimm.schema import SECRET_OPTIONS, AgentConfig, ProviderRole

logger = logging.getLogger("stimm.control_plane")

Config = dict[str, Any]
"""An agent config as JSON (``AgentConfig.model_dump(mode="json")`` or an ``Agent`` row)."""
Loc = tuple[str | int, ...]

_ROLES: tuple[ProviderRole, ...] = get_args(ProviderRole)


def _slots(config: Config) -> Iterator[tuple[Loc, dict[str, Any], str]]:
    """``(location, container, key)`` of every secret value set in ``config``."""
    for role in _ROLES:
        for index, spec in enumerate(config.get(role) or []):
            options = spec.get("options") or {}
            for name in SECRET_OPTIONS:
                if options.get(name) not in (None, ""):
                    yield (role, index, "options", name), options, name
    for index, tool in enumerate(config.get("tools") or []):
        if tool.get("type") in ("webhook", "mcp"):
            headers = tool.get("headers") or {}
            for header in headers:
                yield ("tools", index, "headers", header), headers, header


def _ref_name(value: Any) -> str | None:
    return value.get("secret") if isinstance(value, dict) else None


def secret_refs(config: AgentConfig) -> dict[str, Loc]:
    """The secrets ``config`` refers to, each with the first place it does."""
    refs: dict[str, Loc] = {}
    for loc, container, key in _slots(config.model_dump(mode="json")):
        name = _ref_name(container[key])
        if name is not None:
            refs.setdefault(name, loc)
    return refs


def _new_secret_name(config: Config, loc: Loc) -> str:
    """A fresh name saying where the value is used, e.g. ``LLM_OPENAI_API_KEY_3FA2C1``."""
    if loc[0] == "tools":
        tool = config["tools"][loc[1]]
        words = [tool["type"], tool["name"], loc[3]]
    else:
        words = [loc[0], config[str(loc[0])][loc[1]]["provider"], loc[3]]
    stem = re.sub(r"[^A-Z0-9]+", "_", "_".join(map(str, words)).upper()).strip("_")
    return f"{stem[:50]}_{secrets.token_hex(3).upper()}"


async def _store_plaintext(db: AsyncSession, box: SecretBox, config: Config) -> int:
    """Move every plaintext value of ``config`` (changed in place) into the secrets store."""
    moved = 0
    for loc, container, key in list(_slots(config)):
        value = container[key]
        if isinstance(value, str):
            name = _new_secret_name(config, loc)
            await credentials.put_secret(db, box, name, value)
            container[key] = {"secret": name}
            moved += 1
    return moved


async def store_secrets(db: AsyncSession, box: SecretBox, config: AgentConfig) -> AgentConfig:
    """``config`` with each API key and header value it carries in plaintext stored away."""
    data = config.model_dump(mode="json")
    if await _store_plaintext(db, box, data):
        return AgentConfig.model_validate(data)
    return config


def inline_secrets(config: AgentConfig, values: Mapping[str, str]) -> AgentConfig:
    """``config`` with each reference replaced by its value (for the worker only).

    Raises:
        KeyError: Naming the first referenced secret that is not in ``values``.
    """
    data = config.model_dump(mode="json")
    for _, container, key in _slots(data):
        name = _ref_name(container[key])
        if name is not None:
            container[key] = values[name]
    return AgentConfig.model_validate(data)


async def move_plaintext_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], box: SecretBox
) -> list[str]:
    """Store the plaintext keys and header values of agents saved before references existed.

    Runs at every start of the control plane and does nothing once they are moved. It is not a
    migration because migrations run without ``STIMM_SECRET_KEY``, which encrypts the values.
    Returns the ids of the agents changed.
    """
    moved: list[str] = []
    async with sessionmaker() as db:
        for agent in (await db.exec(select(Agent))).all():
            data = agent.model_dump(include={*_ROLES, "tools"})
            count = await _store_plaintext(db, box, data)
            if count:
                agent.sqlmodel_update(data)
                db.add(agent)
                await db.commit()
                logger.info("agent %s: %d key(s) moved into the secrets store", agent.id, count)
                moved.append(agent.id)
    return moved


async def missing_secrets(db: AsyncSession, config: AgentConfig) -> dict[str, Loc]:
    """The references of ``config`` to secrets that are not set."""
    refs = secret_refs(config)
    if not refs:
        return {}
    stored = {s.name for s in await credentials.list_secrets(db)}
    return {name: loc for name, loc in refs.items() if name not in stored}
