# Stepline: `make run` runs everything on this machine, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck pytest setup setup-dev bench clean

run: setup
	scripts/ensure-redis
	scripts/ensure-bubblewrap
	scripts/run

test: setup-dev
	scripts/ensure-redis
	scripts/ensure-bubblewrap
	scripts/ensure-chromium
	$(MAKE) lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/codespell

typecheck:
	$(BIN)/mypy service workers statemachines stepline

# one pytest process per core, at most 4: 9 minutes in one process on 2 cores, 5 in two
pytest:
	$(BIN)/pytest -q --numprocesses auto --maxprocesses 4

bench: setup-dev
	scripts/ensure-redis
	set -e; for script in bench/*_bench.py; do echo "== $$script"; $(BIN)/python $$script; done

setup: $(VENV)/.runtime-installed
setup-dev: $(VENV)/.dev-installed

$(VENV)/bin/python:
	@echo "Creating the virtualenv $(VENV)..."
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt pyproject.toml | $(VENV)/bin/python
	@echo "Installing Stepline's pinned Python packages into $(VENV) (about a minute the first time)..."
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .  # the `stepline` command
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt pyproject.toml | $(VENV)/bin/python
	@echo "Installing Stepline's pinned Python packages and test tools into $(VENV) (a minute or two the first time)..."
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .  # the `stepline` command
	touch $@ $(VENV)/.runtime-installed

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
