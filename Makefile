# obpilot's two commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: demo test install lock system-deps console console-check lint typecheck pytest openapi services-start services-stop clean

## Python packages come from uv.lock only (exact versions and hashes; see the README's
## Development section): `uv sync --locked` installs them and fails, resolving nothing, when
## the lock does not match pyproject.toml. uv itself is pinned with its hashes in
## scripts/uv-requirements.txt and installed from PyPI as a wheel into .cache/uv.
UV_HOME := .cache/uv
UV := $(UV_HOME)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

$(UV): scripts/uv-requirements.txt
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/pip install --quiet --disable-pip-version-check --no-deps \
		--require-hashes -r scripts/uv-requirements.txt
	touch $@

$(VENV)/.installed: pyproject.toml uv.lock $(UV)
	$(UV) sync --quiet --locked --extra dev --python python3
	touch $@

## make lock: resolve again, every package at its newest allowed version, into uv.lock.
lock: $(UV)
	$(UV) lock --upgrade --python python3

## The pylibseekdb wheel of the locked version, as PyPI serves it and checked against the
## lock's hashes: the tests and the demo upload it as a real software package.
WHEELS := .cache/wheels

$(WHEELS)/.pylibseekdb: uv.lock $(UV)
	mkdir -p $(WHEELS)
	rm -f $(WHEELS)/pylibseekdb-*.whl
	$(UV) export --quiet --locked --extra dev --no-emit-project --format requirements-txt \
		| awk '/^pylibseekdb==/ {keep = 1} keep {print} keep && !/\\$$/ {keep = 0}' \
		> $(WHEELS)/pylibseekdb.requirements.txt
	$(UV_HOME)/bin/pip download --quiet --disable-pip-version-check --no-deps \
		--only-binary :all: --require-hashes -d $(WHEELS) -r $(WHEELS)/pylibseekdb.requirements.txt
	touch $@

install: $(VENV)/.installed $(WHEELS)/.pylibseekdb

## make console: the web console (console/, Node.js 20.19+ and npm), built into the Python
## package (src/obpilot/web/static, served at /); `npm ci` installs the locked dependencies.
CONSOLE_BUILD := src/obpilot/web/static/index.html
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/index.html console/vite.config.ts console/tsconfig.json

console/node_modules/.package-lock.json: console/package.json console/package-lock.json
	cd console && npm ci --no-audit --no-fund

$(CONSOLE_BUILD): console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	cd console && npm run build

console: $(CONSOLE_BUILD)

## The console's own checks: eslint, tsc (strict) and its unit tests (vitest).
console-check: console
	cd console && npm run lint && npm run typecheck && npm test

system-deps:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install-system-deps.sh; \
	else echo "not root: skipping Debian packages (postgresql, mariadb-server, openssh-server, chromium, nodejs)"; fi

## make demo: a 3-zone cluster of real seekdb servers under var/demo, taken over and served
## on $(HOST):$(PORT) (embedded SQLite metadb); `$(VENV)/bin/obpilot demo --down` removes it.
demo: install console
	$(VENV)/bin/obpilot demo --host $(HOST) --port $(PORT) --wheels $(WHEELS)

## make test: install everything, start the metadb services, run lint, types and the suite.
test: system-deps install console
	bash scripts/test-services.sh start
	eval "$$(bash scripts/test-services.sh env)" && $(MAKE) --no-print-directory lint typecheck console-check pytest

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy

pytest: install console
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make openapi: refresh the committed docs/openapi.json after an API change.
openapi: install
	$(VENV)/bin/obpilot openapi --output docs/openapi.json

services-start:
	bash scripts/test-services.sh start

services-stop:
	bash scripts/test-services.sh stop

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache src/obpilot/web/static console/node_modules
