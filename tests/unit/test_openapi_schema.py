"""The console's API types are generated from the checked-in schema: it must be the app's."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.openapi import SCHEMA_PATH, openapi_schema, render

pytestmark = pytest.mark.unit

REGENERATE = "make api-types"

# FastAPI's own error shapes: pydantic leaves `input` and `ctx` out when it has none.
FASTAPI_ERRORS = {"HTTPValidationError", "ValidationError"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return openapi_schema()


def test_the_checked_in_schema_is_the_apps(schema: dict[str, Any]) -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render(schema), (
        f"web/openapi.json is stale; regenerate it and the console's types: {REGENERATE}"
    )


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def test_responses_promise_every_field(schema: dict[str, Any]) -> None:
    """Responses carry every field, defaults included, so the console can rely on them; a
    returned model whose schema leaves a field optional needs
    ``json_schema_serialization_defaults_required=True``."""
    models = schema["components"]["schemas"]
    todo = _refs([op["responses"] for ops in schema["paths"].values() for op in ops.values()])
    returned: set[str] = set()
    while todo:
        name = todo.pop()
        returned.add(name)
        todo |= _refs(models[name]) - returned
    assert {"AgentPublic", "TurnTaking-Output", "SessionPublicWithAnalysis"} <= returned
    optional = {
        f"{name}.{field}"
        for name in returned - FASTAPI_ERRORS
        for field in models[name].get("properties", {})
        if field not in models[name].get("required", [])
    }
    assert not optional, f"returned but optional in the schema: {sorted(optional)}"
