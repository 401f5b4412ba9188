# Every command the README names. `make test` and `make dev` work on a machine with only
# Python 3.11+: the first run creates .venv and installs the project into it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test check lint typecheck pytest pytest-pooler db-tools dev bench layer mutants clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

## The test command: lint, types, template, the whole suite on a real Postgres, then the
## database-facing tests again through a real PgBouncer in transaction mode.
test: install lint typecheck pytest pytest-pooler

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

pytest: install db-tools
	$(BIN)/pytest

## pgbouncer (pooler lane) and PostgreSQL 15 with OpenSSL (TLS tests): apt-get where root.
db-tools:
	@infra/db_tools.sh

# Queue, poller, sweeper, API, migrations, crash torture, restart, outage and failover,
# through PgBouncer (transaction pooling, prepared statements off as the template sets them).
POOLER_LANE := tests/test_queue.py tests/test_worker.py tests/test_sweeper.py tests/test_api.py \
	tests/test_migrations.py tests/test_claim_concurrency.py tests/test_resilience.py \
	tests/test_outage.py tests/test_failover.py tests/test_pooler.py tests/test_roles.py

pytest-pooler: install db-tools
	@if PATH="$$PATH:/usr/sbin" command -v pgbouncer >/dev/null; then \
		echo "Pooler lane: the database tests again, through PgBouncer (transaction mode)"; \
		JOBWORKER_TORTURE_JOBS=400 PATH="$$PATH:/usr/sbin" \
			$(BIN)/pytest --pooler=pgbouncer $(POOLER_LANE); \
	elif [ "$$CI" = "true" ]; then \
		echo "Pooler lane: pgbouncer is not installed, and CI must run this lane"; exit 1; \
	else \
		echo "Pooler lane SKIPPED: pgbouncer is not installed (apt-get install pgbouncer)"; \
	fi

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

## Mutation testing of the queue's SQL (not part of `make test`): each guard removed in turn
## from a copy of queries.sql, and the tests must notice every time.
mutants: install
	$(BIN)/python infra/mutants.py

## The Lambda layer for arm64 / python3.12, built without Docker; prints its size.
layer: install
	$(BIN)/python infra/build_layer.py

clean:
	rm -rf $(VENV) .jobworker build .aws-sam .pytest_cache .mypy_cache .ruff_cache
