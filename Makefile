# obpilot's two commands: `make demo` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: demo test install system-deps lint typecheck pytest openapi services-start services-stop clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

system-deps:
	@if [ "$$(id -u)" = 0 ]; then bash scripts/install-system-deps.sh; \
	else echo "not root: skipping Debian packages (postgresql, mariadb-server, openssh-server)"; fi

## make demo: a 3-zone cluster of real seekdb servers under var/demo, taken over and served
## on $(HOST):$(PORT) (embedded SQLite metadb); `$(VENV)/bin/obpilot demo --down` removes it.
demo: install
	$(VENV)/bin/obpilot demo --host $(HOST) --port $(PORT)

## make test: install everything, start the metadb services, run lint, types and the suite.
test: system-deps install
	bash scripts/test-services.sh start
	eval "$$(bash scripts/test-services.sh env)" && $(MAKE) --no-print-directory lint typecheck pytest

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## make openapi: refresh the committed docs/openapi.json after an API change.
openapi: install
	$(VENV)/bin/obpilot openapi --output docs/openapi.json

services-start:
	bash scripts/test-services.sh start

services-stop:
	bash scripts/test-services.sh stop

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
