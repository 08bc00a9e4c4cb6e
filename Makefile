# Two commands: `make run` and `make test`. Both set up .venv/ first.
# `make run` installs only the runtime and the demo's local S3 server (quick on a clean clone);
# `make test` adds the development toolchain (pytest, mypy, ruff, Playwright, schemathesis, …).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck setup clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[demo]'
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo,dev]'
	touch $(DEV_STAMP) $(RUN_STAMP)

setup: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(BIN)/s3dest demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: $(DEV_STAMP) lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .s3dest .pytest_cache .mypy_cache .ruff_cache
