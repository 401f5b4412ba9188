# Every command the README names. `make test` and `make dev` work on a machine with only
# Python 3.11+: the first run creates .venv and installs the project into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test check lint typecheck pytest dev bench layer clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

## The test command: lint, types, template, then the whole suite on a real Postgres.
test: install lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

## The run command: API on http://127.0.0.1:8080, scheduled poller and sweeper, embedded Postgres.
dev: install
	$(BIN)/jobworker dev

## Benchmarks against the peers (installs the bench extra first).
bench: install
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/jobworker bench throughput --jobs 20000 --workers 2
	$(BIN)/jobworker bench claim-latency
	$(BIN)/jobworker bench cold-start
	$(BIN)/jobworker bench pickup-latency

## The Lambda layer for arm64 / python3.12, built without Docker; prints its size.
layer: install
	$(BIN)/python infra/build_layer.py

clean:
	rm -rf $(VENV) .jobworker build .aws-sam .pytest_cache .mypy_cache .ruff_cache
