"""The post-call analysis: the agent's own LLM reads the transcript and answers one JSON object
(a summary and the configured fields), which is checked before anything is stored.

The request is a plain OpenAI-compatible chat completion (every LLM of the catalog speaks it)
with a JSON schema as ``response_format``, sent through the egress policy's transport. The
agent's LLMs are tried in their failover order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ConfigDict, ValidationError, create_model

from control_plane.jobs import Fail, Retry
from stimm.catalog import LLM as LLM_CATALOG
from stimm.catalog import secrets_needed
from stimm.egress import EgressRefused
from stimm.schema import AgentConfig, AnalysisConfig, AnalysisField, ProviderSpec

OPENAI_BASE_URL = "https://api.openai.com/v1"

_TYPES: dict[str, type] = {"string": str, "number": float, "integer": int, "boolean": bool}
_JSON_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean"}

SYSTEM_PROMPT = (
    "You analyse the transcript of a finished call between a caller and a voice agent. "
    "Answer with one JSON object and nothing else, with exactly these keys:\n{keys}\n"
    "Use null for a value the call does not tell."
)


@dataclass(frozen=True)
class Result:
    summary: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """One OpenAI-compatible chat completions server of the agent's LLM list."""

    base_url: str
    model: str
    api_key: str | None


def endpoints(config: AgentConfig, secrets: dict[str, str], local_llm_url: str) -> list[Endpoint]:
    """The agent's LLMs as chat completions endpoints, in failover order (``config`` has its
    secret references already replaced by values)."""
    found: list[Endpoint] = []
    for spec in config.llm:
        provider = LLM_CATALOG.get(spec.provider)
        if provider is None:
            continue
        base_url = _base_url(spec, local_llm_url)
        key = spec.options.get("api_key")
        if key is None:
            names = secrets_needed("llm", spec)
            key = next((secrets[n] for n in names if n in secrets), None)
        found.append(
            Endpoint(base_url.rstrip("/"), spec.model or provider.default_model or "", key)
        )
    return found


def _base_url(spec: ProviderSpec, local_llm_url: str) -> str:
    if given := spec.options.get("base_url"):
        return str(given)
    if spec.provider == "local":
        return local_llm_url
    provider = LLM_CATALOG[spec.provider]
    default = provider.option("base_url")
    return str(default.default) if default and default.default else OPENAI_BASE_URL


def _keys(analysis: AnalysisConfig) -> list[tuple[str, str, str]]:
    keys = [("summary", "string", "two or three sentences on what the call was about")]
    keys = keys if analysis.summary else []
    return keys + [(f.name, f.type, f.description) for f in analysis.fields]


def json_schema(analysis: AnalysisConfig) -> dict[str, Any]:
    """The JSON schema of the answer (for ``response_format``)."""
    keys = _keys(analysis)
    return {
        "type": "object",
        "properties": {
            name: {"type": [_JSON_TYPES[kind], "null"], "description": description}
            for name, kind, description in keys
        },
        "required": [name for name, _, _ in keys],
        "additionalProperties": False,
    }


def messages(analysis: AnalysisConfig, transcript: list[tuple[str, str]]) -> list[dict[str, str]]:
    keys = "\n".join(f"- {name} ({kind} or null): {desc}" for name, kind, desc in _keys(analysis))
    lines = "\n".join(
        f"{'Caller' if role == 'user' else 'Agent'}: {text}" for role, text in transcript
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT.format(keys=keys)},
        {"role": "user", "content": f"Transcript:\n{lines}"},
    ]


def parse_answer(analysis: AnalysisConfig, answer: str) -> Result:
    """The summary and fields of the LLM's answer.

    Raises:
        Fail: When the answer is not one JSON object, or its values do not fit the fields
            (the reason says which); nothing of it is kept.
    """
    text = answer.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise Fail(f"The LLM's answer is not JSON ({e.msg} at character {e.pos})") from e
    if not isinstance(value, dict):
        raise Fail(f"The LLM's answer is a JSON {type(value).__name__}, not an object")
    model = _answer_model(analysis.fields, with_summary=analysis.summary)
    try:
        checked = model.model_validate(value)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc'])) or 'answer'}: {err['msg']}" for err in e.errors()
        )
        raise Fail(f"The LLM's answer does not fit the analysis fields: {problems}") from e
    data = checked.model_dump()
    summary = data.pop("summary", None)
    return Result(summary=summary, data=data)


def _answer_model(fields: list[AnalysisField], *, with_summary: bool) -> Any:
    definitions: dict[str, Any] = {f.name: (_TYPES[f.type] | None, ...) for f in fields}
    if with_summary:
        definitions["summary"] = (str | None, ...)
    # strict: "yes" is not a boolean and "42" not a number; keys not asked for are dropped
    return create_model(
        "AnalysisAnswer", __config__=ConfigDict(strict=True, extra="ignore"), **definitions
    )


async def analyse(
    client: httpx.AsyncClient,
    targets: list[Endpoint],
    analysis: AnalysisConfig,
    transcript: list[tuple[str, str]],
    *,
    timeout_s: float,
) -> Result:
    """Ask the first LLM that answers; raise ``Retry`` when none does, ``Fail`` when the
    answer is malformed."""
    if not transcript:
        raise Fail("The call has no transcript to analyse")
    if not targets:
        raise Fail("The agent has no LLM to analyse the call with")
    body = {
        "messages": messages(analysis, transcript),
        "temperature": 0,
        "stream": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "schema": json_schema(analysis)},
        },
    }
    problems: list[str] = []
    for target in targets:
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        try:
            response = await client.post(
                f"{target.base_url}/chat/completions",
                json={**body, "model": target.model},
                headers=headers,
                timeout=timeout_s,
            )
        except EgressRefused as e:
            problems.append(f"{target.base_url}: {e}")
            continue
        except httpx.HTTPError as e:
            problems.append(f"{target.base_url}: {type(e).__name__}: {e}")
            continue
        if response.status_code >= 400:
            problems.append(f"{target.base_url} answered HTTP {response.status_code}")
            continue
        try:
            answer = response.json()["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise Fail(f"{target.base_url} answered something other than a chat completion") from e
        return parse_answer(analysis, str(answer))
    raise Retry("No LLM answered: " + "; ".join(problems))
