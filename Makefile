# The two commands a new machine needs: `make run` (the whole product on 127.0.0.1) and
# `make test` (the whole suite). Both create the virtual environment and install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test unit bench bench-large load lint openapi clean chromium browser

install: $(STAMP)

$(STAMP): requirements-dev.txt layers/billbridge/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Data is kept in .local/ (LOCAL_STATE_DIR moves it) across runs; `make run FRESH=1` starts clean.
run: $(STAMP)
	$(BIN)/python -m local.stack $(if $(FRESH),--fresh)

# The browser tests drive Debian's Chromium (apt); Playwright's own browser download is never used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update && apt-get install -y chromium; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest

browser: $(STAMP) chromium
	$(BIN)/python -m pytest tests/e2e/browser

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python -m bench

# 50 clients for 2 minutes against a fresh local stack on loopback; fails on any 5xx, crossed
# answer, money invariant or memory growth; the table goes into docs/benchmarks.md.
load: $(STAMP)
	$(BIN)/python -m bench.load --docs docs/benchmarks.md

# Sync and list at 100,000 bills (many minutes; a section of its own in docs/benchmarks.md).
bench-large: $(STAMP)
	$(BIN)/python -m bench --large

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy layers/billbridge/billbridge

openapi: $(STAMP)
	$(BIN)/python -m local.openapi docs/openapi.json
	$(BIN)/python -m local.openapi --public docs/openapi-public.json

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache
