"""The provider catalog: what each agent's STT, LLM and TTS can be."""

from __future__ import annotations

from fastapi import APIRouter

from control_plane import credentials
from control_plane.api.deps import DbDep
from control_plane.models import (
    ProviderOptionPublic,
    ProviderPublic,
    ProviderSecretPublic,
    ProvidersPublic,
)
from stimm.catalog import CATALOG, Provider

router = APIRouter(prefix="/providers", tags=["providers"])


def _public(provider: Provider, stored: set[str]) -> ProviderPublic:
    return ProviderPublic(
        name=provider.name,
        label=provider.label,
        models=list(provider.models) if provider.models is not None else None,
        default_model=provider.default_model,
        options=[
            ProviderOptionPublic(
                name=o.name,
                type=o.type,
                description=o.description,
                default=o.default,
                required=o.required,
            )
            for o in provider.options
        ],
        secrets=[ProviderSecretPublic(name=s, set=s in stored) for s in provider.secrets],
        local=provider.local,
        openai_compatible=provider.openai_compatible,
        demo=provider.demo,
    )


@router.get("")
async def list_providers(db: DbDep) -> ProvidersPublic:
    """Every provider per role, with its models, options and whether its secrets are set."""
    stored = {s.name for s in await credentials.list_secrets(db)}
    return ProvidersPublic(
        stt=[_public(p, stored) for p in CATALOG["stt"].values()],
        llm=[_public(p, stored) for p in CATALOG["llm"].values()],
        tts=[_public(p, stored) for p in CATALOG["tts"].values()],
    )
