"""Agent configs checked against the provider catalog, reported like FastAPI's own 422s."""

from __future__ import annotations

from typing import Any, get_args

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from control_plane.agent_secrets import missing_secrets
from control_plane.knowledge.crud import get_knowledge_base
from stimm.catalog import check_spec, secrets_needed
from stimm.schema import AgentConfig, ProviderRole

ROLES: tuple[ProviderRole, ...] = get_args(ProviderRole)


def catalog_errors(config: AgentConfig) -> list[dict[str, Any]]:
    """One error per problem, located in the request body (``["body", "llm", 0, "model"]``)."""
    errors: list[dict[str, Any]] = []
    for role in ROLES:
        for index, spec in enumerate(getattr(config, role)):
            for problem in check_spec(role, spec):
                errors.append(
                    {
                        "type": problem.type,
                        "loc": ("body", role, index, *problem.loc),
                        "msg": problem.message,
                    }
                )
    return errors


async def ensure_valid(db: AsyncSession, config: AgentConfig) -> None:
    """Raise a 422 ``RequestValidationError`` naming each field the catalog rejects, each
    secret referred to that is not set, and the knowledge base if it does not exist."""
    errors = catalog_errors(config)
    for name, loc in (await missing_secrets(db, config)).items():
        errors.append(
            {
                "type": "not_found",
                "loc": ("body", *loc),
                "msg": f"Secret {name} is not set: store it first (console > Secrets, "
                f"or PUT /api/secrets/{name})",
            }
        )
    kb_id = config.knowledge_base_id
    if kb_id is not None and await get_knowledge_base(db, kb_id) is None:
        errors.append(
            {
                "type": "not_found",
                "loc": ("body", "knowledge_base_id"),
                "msg": f"Knowledge base {kb_id} not found",
            }
        )
    if errors:
        raise RequestValidationError(errors)


def as_body_errors(error: ValidationError) -> RequestValidationError:
    """A config validated outside FastAPI (a merged PATCH), reported as body errors."""
    return RequestValidationError(
        [
            {key: value for key, value in e.items() if key != "ctx"} | {"loc": ("body", *e["loc"])}
            for e in error.errors()
        ]
    )


def secret_names(config: AgentConfig) -> set[str]:
    """The secrets the worker needs to build this agent's providers."""
    return {
        name
        for role in ROLES
        for spec in getattr(config, role)
        for name in secrets_needed(role, spec)
    }
