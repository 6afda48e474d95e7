.PHONY: dev test check install install-test api-types

install:
	./scripts/install.sh

# what only the tests use, too: toxiproxy (network faults) and MinIO (the S3 recordings store)
install-test:
	./scripts/install.sh --test-tools

dev: install
	.venv/bin/stimm dev

test: install-test
	cd web && npm test
	.venv/bin/pytest -ra --durations=25

check:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy

# The console's API types come from the control plane's OpenAPI schema (both files checked in).
api-types:
	.venv/bin/python -m control_plane.openapi
	cd web && npm run gen:api
