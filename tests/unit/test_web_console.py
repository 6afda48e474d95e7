"""The control plane serves the built console at ``/`` without shadowing the API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from control_plane.web import console_router

pytestmark = pytest.mark.unit


def make_app(dist: Path) -> FastAPI:
    app = FastAPI()
    api = APIRouter(prefix="/api")

    @api.get("/agents")
    async def agents() -> dict[str, list[str]]:
        return {"items": []}

    app.include_router(api)
    app.include_router(console_router(dist))
    return app


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<div id=root></div>")
    (tmp_path / "assets" / "index-abc.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("not for you")
    return tmp_path


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


async def test_index_and_client_side_routes_get_the_app(dist: Path) -> None:
    app = make_app(dist)
    for path in ("/", "/agents", "/calls/1234", "/knowledge/x/y"):
        resp = await get(app, path)
        assert resp.status_code == 200, path
        assert "id=root" in resp.text
        assert resp.headers["cache-control"] == "no-cache"


async def test_hashed_assets_are_served_and_cached_forever(dist: Path) -> None:
    resp = await get(make_app(dist), "/assets/index-abc.js")
    assert resp.text == "console.log(1)"
    assert "immutable" in resp.headers["cache-control"]
    missing = await get(make_app(dist), "/assets/gone.js")
    assert missing.status_code == 404


async def test_api_docs_and_unknown_api_paths_are_not_the_app(dist: Path) -> None:
    app = make_app(dist)
    assert (await get(app, "/api/agents")).json() == {"items": []}
    unknown = await get(app, "/api/nope")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    assert (await get(app, "/openapi.json")).json()["openapi"].startswith("3.")
    assert "swagger" in (await get(app, "/docs")).text.lower()
    assert (await get(app, "/health")).status_code == 404


async def test_paths_outside_the_build_are_refused(dist: Path) -> None:
    resp = await get(make_app(dist), "/..%2Fsecret.txt")
    assert "not for you" not in resp.text


async def test_without_a_build_the_root_says_how_to_make_one(tmp_path: Path) -> None:
    resp = await get(make_app(tmp_path / "missing"), "/")
    assert resp.status_code == 503
    assert "npm ci &amp;&amp; npm run build" in resp.text
