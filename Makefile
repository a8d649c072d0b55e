# One command to start taskloom, one to test it. Each sets up .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgres bench lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

## Start the server on 127.0.0.1:8000 (SQLite + blobs in ./taskloom-data, in-process workers).
## Another port: make run PORT=8001 (or TASKLOOM_PORT=8001 make run).
PORT ?=
run: $(STAMP)
	$(BIN)/taskloom serve $(if $(PORT),--port $(PORT),)

## The whole test suite on SQLite (and on PostgreSQL too when TASKLOOM_TEST_DATABASE_URL is set).
test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## The whole test suite on a throwaway PostgreSQL server (installed with apt-get if missing).
test-postgres: $(DEV_STAMP)
	TASKLOOM_TEST_DATABASE_URL=$$(scripts/pg.sh) $(BIN)/python -m pytest $(PYTEST_ARGS)

## Benchmarks against baselines measured in the same run.
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/taskloom
	$(BIN)/lint-imports

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean:
	rm -rf $(VENV) .venv-toloka .venv-clarifai build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
