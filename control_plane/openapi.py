"""The control plane's OpenAPI schema, which the console's API types are generated from.

``python -m control_plane.openapi`` writes it to ``web/openapi.json``; ``npm run gen:api`` in
``web/`` turns that into ``web/src/api/schema.d.ts``. Both files are checked in, and tests fail
when either is older than the code (``tests/unit/test_openapi_schema.py``,
``web/src/api/schema.test.ts``). ``make api-types`` does both steps.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from control_plane.core.config import Settings
from control_plane.main import create_app

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "web" / "openapi.json"


def openapi_schema() -> dict[str, Any]:
    """The schema of the real app, built without touching any database or server."""
    with tempfile.TemporaryDirectory() as tmp:
        # Fixed settings so that the environment cannot change the file.
        settings = Settings(
            dev=True, database_url=f"sqlite+aiosqlite:///{tmp}/schema.db", redis_url=None
        )
        return create_app(settings).openapi()


def render(schema: dict[str, Any]) -> str:
    """The schema as the checked-in file holds it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else SCHEMA_PATH
    path.write_text(render(openapi_schema()), encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
