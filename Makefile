.PHONY: dev test check install api-types

install:
	./scripts/install.sh

dev: install
	.venv/bin/stimm dev

test: install
	cd web && npm test
	.venv/bin/pytest -ra

check:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

# The console's API types come from the control plane's OpenAPI schema (both files checked in).
api-types:
	.venv/bin/python -m control_plane.openapi
	cd web && npm run gen:api
