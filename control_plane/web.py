"""The web console: the built single-page app in ``web/dist``, served at ``/``.

Paths under the API and FastAPI's own pages are never answered with the app, so an unknown
``/api/...`` route is still a JSON 404. Any other path that is not a built file gets
``index.html`` (client-side routing). Without a build, ``/`` says how to make one.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse, HTMLResponse, Response

WEB_DIST = Path(__file__).resolve().parents[1] / "web" / "dist"

RESERVED = frozenset({"api", "health", "docs", "redoc", "openapi.json"})
"""First path segments that belong to the API, never to the console."""

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_REVALIDATE = {"Cache-Control": "no-cache"}

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stimm console not built</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto">
<h1>The Stimm web console is not built</h1>
<p>Build it once (Node 20+):</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>or run <code>make dev</code>, which builds it when needed. The API is up: see
<a href="/docs">/docs</a>.</p>
</body></html>
"""


def console_router(dist: Path = WEB_DIST) -> APIRouter:
    """A catch-all route serving ``dist``; include it after every other router."""
    router = APIRouter(include_in_schema=False)
    root = dist.resolve()

    @router.get("/{path:path}")
    async def console(path: str) -> Response:
        if path.split("/", 1)[0] in RESERVED:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Not Found")
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
        if path:
            candidate = (root / path).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                hashed = candidate.parent.name == "assets"
                return FileResponse(candidate, headers=_IMMUTABLE if hashed else _REVALIDATE)
            if path.startswith("assets/"):
                raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Not Found")
        return FileResponse(index, headers=_REVALIDATE)

    return router
