# Two commands: `make run` and `make test`. Both set up .venv/ first.
# `make run` installs only the runtime and the demo's local S3 server, so a clean clone shows
# messages landing within a minute; `make test` adds the development toolchain (pytest, mypy,
# ruff, Playwright, schemathesis, …). Installs go through uv (about 10 s for the demo's
# packages instead of about 45 s with pip); pip is the fallback when uv cannot be installed.
#
# Bytecode: installs compile it (uv does not by default), and `run`/`test` compile src/ first.
# Environments that set PYTHONDONTWRITEBYTECODE (this project's CI image does) otherwise
# recompile every module from source in every process: each `s3dest` subprocess a test starts
# paid ~2.0 s CPU to import instead of ~0.8 s, the largest single cost of the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
DEV_EXTRAS := demo,dev

# $(call install,EXTRAS): install this project in editable mode with EXTRAS into .venv/.
install = ( $(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
	    && $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[$(1)]' ) \
	|| $(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[$(1)]'

.PHONY: run test lint typecheck setup clean mutate screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(call install,demo)
	touch $(RUN_STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(call install,$(DEV_EXTRAS))
	touch $(DEV_STAMP) $(RUN_STAMP)

# Compiles only what changed since the last run (a second or two).
compile = $(BIN)/python -m compileall -q -j 0 src $(1) > /dev/null

setup: $(DEV_STAMP)

run: $(RUN_STAMP)
	$(call compile)
	$(BIN)/s3dest demo

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

test: $(DEV_STAMP) lint typecheck
	$(call compile,tests bench)
	$(BIN)/pytest -q -n 3 --dist loadfile --durations=15

# The README's screenshots: the browser tests take every page (test-output/screenshots/),
# then tests/browser/screenshots.py copies the README's to docs/screenshots/ (~5 min).
screenshots: $(DEV_STAMP)
	$(call compile,tests)
	$(BIN)/pytest -q -n 2 tests/browser
	$(BIN)/python -m tests.browser.screenshots

# Mutation testing of the modules that carry the promise ([tool.mutmut] in pyproject.toml)
# against tests/unit; ~1,960 mutants: a few hours on 2 shared cores (one module:
# `nice -n 10 .venv/bin/mutmut run --max-children 1 "s3dest.keys.*"`, ~40 min shared).
# Under mutmut (it sets MUTANT_UNDER_TEST) the property tests run 10 fixed examples each
# (tests/unit/conftest.py): fast and repeatable, but a mutant only a rare generated example
# would catch may survive here. The report, with every surviving mutant and why it lives,
# is docs/mutation.md; `mutmut show <name>` shows one.
mutate: $(DEV_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 > /dev/null || true
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python -m tests.support.mutation_report

clean:
	rm -rf mutants $(VENV) .s3dest .pytest_cache .mypy_cache .ruff_cache
