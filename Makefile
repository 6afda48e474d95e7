.PHONY: dev test check install

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
