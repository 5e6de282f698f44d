# The two commands a newcomer needs: `make run` and `make test`. Both set up everything first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHECKOV_STAMP := .local/checkov-venv/.installed
PYTEST_ARGS ?=

.PHONY: setup chromium run stack test test-fast lint bench-gateway bench-traffic bench-costs bench-alerts soak workbook local-settings-azure screenshot-email prices catalog reprice clean

setup: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP) chromium

# Debian's Chromium renders the alert email for the screenshot test (a registry package, no browser
# download). Needs root for apt-get; without it the screenshot test is skipped with a warning.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "warning: could not install chromium; the alert email screenshot test will be skipped"

$(PY_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# checkov (Bicep security scan) pins packaging<24 while pytest 9 needs >=24: it gets its own venv.
$(CHECKOV_STAMP): tools/checkov/requirements.txt
	@test -x .local/checkov-venv/bin/python || $(PYTHON) -m venv .local/checkov-venv
	.local/checkov-venv/bin/python -m pip install --quiet --disable-pip-version-check -r tools/checkov/requirements.txt
	@touch $@

# Stand-ins + local Functions host with the sample settings; Ctrl-C stops, RUN_FOR=<s> stops by itself.
# BYPASS_SHARE=0.05: the bypass demo, that share of gpt-5.6-terra's calls skips the gateway's metering.
# BILL_DEMO=1: the bill demo, yesterday's history seeded and billed over our prices (standins/history.py).
BYPASS_SHARE ?=
BILL_DEMO ?=
run: setup
	$(PY) -m standins.stack $(if $(BYPASS_SHARE),--bypass-share $(BYPASS_SHARE)) $(if $(BILL_DEMO),--bill-demo)

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

# 10 million metric rows; (b) needs about 13 GB of memory. BENCH_COSTS_ARGS="--keep DIR" reuses the data.
bench-costs: setup
	$(PY) -m bench.costs_10m $(BENCH_COSTS_ARGS)

# One alert run over 100,000 users' summaries with 5,000 firing (target: under 30 s and 1 GB), then the run after it.
# BENCH_ALERTS_ARGS="--users 20000 --firing 1000 --keep DIR" for another size, or to reuse the generated data.
bench-alerts: setup
	$(PY) -m bench.alerts_scale $(BENCH_ALERTS_ARGS)

# The chaos soak (issue 14): a simulated week of the whole local stack on a stepped clock under seeded faults, then
# the figures (exact money per final window, each alert mailed once, no process left, host memory). Not a test: run on
# demand (about half an hour). SOAK_ARGS="--days 2 --seed 5" for another length or seed; --help lists the knobs.
soak: setup
	$(PY) -m bench.soak $(SOAK_ARGS)

# Regenerate infra/app/workbook.json after changing shared/logs/kql (a test fails while it is stale).
workbook: setup
	$(PY) -m tools.build_workbook

# local.settings.json from `azd env get-values` and Key Vault, to run `func start` against Azure.
local-settings-azure: setup
	$(PY) tools/write_local_settings.py

# Renders a sample alert digest and screenshots it in headless Chromium (.local/email-screenshot/).
screenshot-email: setup
	$(PY) -m tools.screenshot_email

# Price catalog from the Azure Retail Prices API (needs the internet): writes PRICES_OUT and prints what
# changed since the last run (kept as PRICES_OUT.previous). PRICES_ARGS="--region eastus --currency USD".
PRICES_OUT ?= .local/prices/catalog.json
prices: $(PY_STAMP)
	@mkdir -p $(dir $(PRICES_OUT))
	if test -f $(PRICES_OUT); then cp $(PRICES_OUT) $(PRICES_OUT).previous; diff="--diff $(PRICES_OUT).previous"; fi; \
		$(PY) -m tools.prices retail $(PRICES_ARGS) --out $(PRICES_OUT) $$diff

# The shipped catalog (shared/costs/prices/catalog.json), rebuilt from LiteLLM's price map in its PyPI wheel plus
# shared/costs/prices/supplement.json; prints the prices added, removed and changed, for review before a commit.
LITELLM_VERSION ?= 1.110.2
CATALOG_VERSION ?= $(shell date -u +%Y-%m-%d).1
catalog: $(PY_STAMP)
	rm -rf .local/litellm && $(PY) -m pip download --no-deps -q -d .local/litellm litellm==$(LITELLM_VERSION)
	$(PY) -c "import glob, zipfile; zipfile.ZipFile(glob.glob('.local/litellm/*.whl')[0]).extract('litellm/model_prices_and_context_window_backup.json', '.local/litellm')"
	$(PY) -m tools.prices litellm .local/litellm/litellm/model_prices_and_context_window_backup.json \
		--supplement shared/costs/prices/supplement.json --version $(CATALOG_VERSION) \
		--diff shared/costs/prices/catalog.json --out shared/costs/prices/catalog.json

# Reprice final cost windows on purpose (a costs run never reprices a closed month), with the app's settings
# from the environment. REPRICE_ARGS='--from 2026-10-01 --to 2026-11-01 --reason "..." [--dry-run]
# [--settings .local/local.settings.json]'
reprice: $(PY_STAMP)
	$(PY) -m tools.reprice $(REPRICE_ARGS)

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
