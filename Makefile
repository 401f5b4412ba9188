# Every command the README names. `make test` and `make dev` work on a machine with only
# Python 3.11+: the first run creates .venv and installs the project into it.

# Python 3.12 when this machine has one (the Lambda runtime's version, and the only one OSRM's
# module has wheels for): a python3.12 on PATH that runs, else pyenv's newest 3.12, else
# python3. On 3.11 everything works except the `osrm` road provider, whose tests then skip
# (under CI=true they fail instead). Override with `make test PYTHON=...`.
PYTHON_312 := $(shell for py in python3.12 $$(ls -d "$$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3 2>/dev/null | sort -rV); do \
	"$$py" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$py"; break; }; done)
PYTHON ?= $(or $(PYTHON_312),python3)
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test check lint typecheck pytest pytest-pooler db-tools dev bench layer mutants clean browser

# The dashboard's map library: a pinned release from the npm registry, unpacked into the
# package (git-ignored) so that the page needs no CDN. Without npm the page draws plain SVG.
LEAFLET_VERSION := 1.9.4
UI_VENDOR := layer/jobworker/api/ui/vendor
LEAFLET := $(UI_VENDOR)/leaflet.js

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

$(LEAFLET):
	@if command -v npm >/dev/null 2>&1; then \
		tmp=$$(mktemp -d) && \
		(cd $$tmp && npm pack --silent leaflet@$(LEAFLET_VERSION) >/dev/null && \
		 tar -xzf leaflet-$(LEAFLET_VERSION).tgz package/dist/leaflet.js package/dist/leaflet.css \
		     package/LICENSE) && \
		mkdir -p $(UI_VENDOR) && \
		cp $$tmp/package/dist/leaflet.js $$tmp/package/dist/leaflet.css $(UI_VENDOR)/ && \
		cp $$tmp/package/LICENSE $(UI_VENDOR)/LEAFLET-LICENSE.txt && rm -rf $$tmp; \
	else echo "npm not found: the dashboard draws its maps in plain SVG (no Leaflet)"; fi

install: $(INSTALLED) $(LEAFLET)

## Chromium for the browser tests (Debian's package, as root); quick when already there.
## Elsewhere the browser tests skip saying why (and fail under CI=true).
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)) >/dev/null; \
	else echo "no Chromium and not root: the browser tests will skip"; fi

## The test command: lint, types, template, the whole suite on a real Postgres, then the
## database-facing tests again through a real PgBouncer in transaction mode.
test: install browser lint typecheck pytest pytest-pooler

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

pytest: install db-tools
	$(BIN)/pytest --durations=15

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
