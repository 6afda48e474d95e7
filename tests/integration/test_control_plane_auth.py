"""API keys: every route but /health needs one; keys are hashed, revocable, bootstrapped once,
and managed through the API and the ``stimm api-key`` CLI. Real PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlmodel import select
from typer.testing import CliRunner

from control_plane.main import ensure_bootstrap_key
from control_plane.models import ApiKey
from stimm.cli import app as cli_app
from tests.integration.control_plane_env import (
    DATABASE_URL,
    WORKER_HEADERS,
    app_client,
    fresh_database,
    make_settings,
    new_api_key,
)

pytestmark = pytest.mark.integration

# /health, and the recordings audio route: a short-lived signed URL is its credential (checked by
# tests/integration/test_recordings.py: a bad or expired signature gets 403)
PUBLIC_PATHS = {"/health", "/api/recordings/{session_id}"}


@pytest_asyncio.fixture(scope="module")
async def app_and_client(database_url: str) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_client(make_settings(database_url), authenticated=False) as pair:
        yield pair


def routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every operation the app serves.

    Read from the OpenAPI document, which FastAPI builds from every included router.
    """
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for method in operations:
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "X_NAME", path)))
    return found


async def test_every_route_but_health_refuses_missing_and_revoked_keys(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    await new_api_key(app, "stays")  # the last active key cannot be revoked
    key_id, key = await new_api_key(app, "soon revoked")
    async with app.state.sessionmaker() as db:
        row = await db.get(ApiKey, key_id)
        assert row is not None
        from control_plane import credentials

        await credentials.revoke_api_key(db, row)

    all_routes = routes(app)
    # The matrix covers the whole API, including routes other modules add.
    assert {"/api/agents", "/api/secrets", "/api/api-keys", "/api/providers"} <= {
        p for _, p in all_routes
    }
    assert len(all_routes) >= 20
    failures = []
    for method, path in all_routes:
        for label, headers in [
            ("no key", {}),
            ("revoked key", {"Authorization": f"Bearer {key}"}),
            ("wrong scheme", {"Authorization": f"Basic {key}"}),
        ]:
            response = await client.request(method, path, headers=headers, json={})
            if response.status_code != 401:
                failures.append((method, path, label, response.status_code))
    assert failures == []
    assert (await client.get("/health")).status_code == 200


async def test_api_keys_and_worker_token_do_not_open_each_others_routes(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    _, key = await new_api_key(app)
    api_headers = {"Authorization": f"Bearer {key}"}
    as_worker = await client.get("/api/worker/agents/any", headers=api_headers)
    assert as_worker.status_code == 401
    as_api = await client.get("/api/agents", headers=WORKER_HEADERS)
    assert as_api.status_code == 401
    assert (await client.get("/api/agents", headers=api_headers)).status_code == 200


async def test_key_created_through_the_api_works_until_revoked(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    _, admin_key = await new_api_key(app, "admin")
    admin = {"Authorization": f"Bearer {admin_key}"}

    created = await client.post("/api/api-keys", json={"name": "ci"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    new_key = body["key"]
    assert new_key.startswith("stimm_") and len(new_key) > 40
    assert new_key.startswith(body["prefix"])
    headers = {"Authorization": f"Bearer {new_key}"}
    assert (await client.get("/api/agents", headers=headers)).status_code == 200

    listing = await client.get("/api/api-keys", headers=admin)
    assert body["id"] in [k["id"] for k in listing.json()["items"]]
    assert new_key not in listing.text  # shown once, never again

    # Only the hash is stored.
    async with app.state.sessionmaker() as db:
        stored = (await db.exec(select(ApiKey).where(ApiKey.id == body["id"]))).one()
    assert new_key not in (stored.key_hash, stored.prefix)
    assert len(stored.key_hash) == 64

    revoked = await client.delete(f"/api/api-keys/{body['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = await client.get("/api/agents", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "The API key is unknown or revoked"
    assert (await client.delete("/api/api-keys/nope", headers=admin)).status_code == 404


async def test_bootstrap_key_is_created_once_and_printed_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url), authenticated=False) as (app, client),
    ):
        key = await ensure_bootstrap_key(app.state.sessionmaker, app.state.settings)
        assert key is not None
        printed = capsys.readouterr().out
        assert "STIMM BOOTSTRAP API KEY" in printed and key in printed
        headers = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/api/agents", headers=headers)).status_code == 200

        # A restart finds a key and prints nothing.
        assert await ensure_bootstrap_key(app.state.sessionmaker, app.state.settings) is None
        assert capsys.readouterr().out == ""


async def test_bootstrap_key_from_the_environment_is_registered_not_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    given = "stimm_from-the-environment-0123456789"
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url, bootstrap_api_key=given), authenticated=False) as (
            app,
            client,
        ),
    ):
        assert await ensure_bootstrap_key(app.state.sessionmaker, app.state.settings) is None
        assert given not in capsys.readouterr().out
        ok = await client.get("/api/agents", headers={"Authorization": f"Bearer {given}"})
        assert ok.status_code == 200


def run_cli(database_url: str, *args: str) -> Any:
    result = CliRunner().invoke(
        cli_app, ["api-key", *args], env={"STIMM_DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    return result


async def test_cli_creates_lists_and_revokes_keys(
    database_url: str, app_and_client: tuple[FastAPI, httpx.AsyncClient]
) -> None:
    _, client = app_and_client
    created = await asyncio.to_thread(run_cli, database_url, "create", "--name", "laptop")
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("stimm_")
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/agents", headers=headers)).status_code == 200

    listing = (await asyncio.to_thread(run_cli, database_url, "list")).output
    line = next(line for line in listing.splitlines() if "laptop" in line)
    assert key not in listing and "active" in line
    key_id = line.split()[0]

    await asyncio.to_thread(run_cli, database_url, "revoke", key_id)
    assert (await client.get("/api/agents", headers=headers)).status_code == 401
    assert "revoked" in (await asyncio.to_thread(run_cli, database_url, "list")).output

    missing = await asyncio.to_thread(
        CliRunner().invoke,
        cli_app,
        ["api-key", "revoke", "nope"],
        env={"STIMM_DATABASE_URL": database_url},
    )
    assert "No API key nope" in missing.output
    assert missing.exit_code == 1


async def test_the_last_active_key_cannot_be_revoked() -> None:
    async with (
        fresh_database(DATABASE_URL) as url,
        app_client(make_settings(url)) as (app, client),
    ):
        listed = (await client.get("/api/api-keys")).json()["items"]
        assert len(listed) == 1
        only = listed[0]["id"]
        refused = await client.delete(f"/api/api-keys/{only}")  # with itself
        assert refused.status_code == 409
        assert "last active key; create another key first" in refused.json()["detail"]
        assert (await client.get("/api/agents")).status_code == 200

        # with two keys, revoking both at once leaves one
        other = (await client.post("/api/api-keys", json={"name": "second"})).json()
        other_headers = {"Authorization": f"Bearer {other['key']}"}
        results = await asyncio.gather(
            client.delete(f"/api/api-keys/{only}"),
            client.delete(f"/api/api-keys/{other['id']}", headers=other_headers),
        )
        assert sorted(r.status_code for r in results) == [200, 409]
        async with app.state.sessionmaker() as db:
            active = (await db.exec(select(ApiKey).where(ApiKey.revoked_at == None))).all()  # noqa: E711
        assert len(active) == 1


async def test_a_publishable_key_opens_no_route_but_the_widget_session(
    app_and_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_and_client
    _, admin_key = await new_api_key(app, "admin")
    admin = {"Authorization": f"Bearer {admin_key}"}
    agent = await client.post(
        "/api/agents",
        json={"name": "Widget", "instructions": "You answer.", "llm": {"provider": "openai"}},
        headers=admin,
    )
    created = await client.post(
        "/api/publishable-keys",
        json={
            "name": "site",
            "agent_ids": [agent.json()["id"]],
            "allowed_origins": ["https://site.example"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    publishable = {
        "Authorization": f"Bearer {created.json()['key']}",
        "Origin": "https://site.example",
    }
    widget_route = ("POST", "/api/widget/sessions")
    all_routes = routes(app)
    assert widget_route in all_routes
    failures = []
    for method, path in all_routes:
        if (method, path) == widget_route:
            continue
        response = await client.request(method, path, headers=publishable, json={})
        if response.status_code not in (401, 403):
            failures.append((method, path, response.status_code))
    assert failures == []
    # and an API key does not open the widget's route
    as_admin = await client.post(
        "/api/widget/sessions", headers={**admin, "Origin": "https://site.example"}, json={}
    )
    assert as_admin.status_code == 401
