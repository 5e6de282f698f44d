# The two commands a newcomer needs: `make run` and `make test`. Both set up everything first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PYTEST_ARGS ?=

.PHONY: setup run stack test test-fast lint bench-gateway bench-traffic clean

setup: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Stand-ins + local Functions host with the sample settings; Ctrl-C stops, RUN_FOR=<s> stops by itself.
run: setup
	$(PY) -m standins.stack

# Stand-ins only, for `func start` users: then `cp .local/local.settings.json . && func start`.
stack: setup
	$(PY) -m standins.stack --no-host

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the slow end-to-end tests.
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# Benchmarks print figures; run on demand, never in tests (shared machines are noisy).
bench-gateway: setup
	$(PY) -m bench.gateway_latency

bench-traffic: setup
	$(PY) -m bench.traffic_rate

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
