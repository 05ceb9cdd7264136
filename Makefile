# huledu-forensics — quick start on a fresh machine with Python 3.11:
#
#   make demo      create .venv if needed, then run the demo into out/demo
#   make test      create .venv if needed, then run ruff, mypy --strict and the test suite
#   make bench     create .venv if needed, then print speed ratios against baselines (BENCH_SCALE=0.1: 1/10 size)
#   make clean     remove outputs and caches (keeps .venv); make distclean also removes .venv
#
# Variables (override on the command line, e.g. `make test PYTEST_ARGS="-m 'not slow' -x"`):
#   PYTHON            interpreter used to create the virtualenv (python3.11 or newer)
#   VENV              virtualenv directory
#   PYTEST_ARGS       arguments passed to pytest
#   EXTRA_PIP         extra requirements installed into the virtualenv (e.g. playwright kaleido)
#   DEMO_OUT          where `make demo` writes its bundle and report
#   BENCH_SCALE       size of `make bench`: 1 = 1 GB of logs and 100k batches in PostgreSQL

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
EXTRA_PIP ?=
DEMO_OUT ?= out/demo
BENCH_SCALE ?= 1

BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help venv demo test bench clean distclean

help: ## show this help
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The stamp is rebuilt when pyproject.toml changes (the package itself is installed editable).
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "$(PYTHON) is Python %d.%d; huledu-forensics needs 3.11 or newer (make PYTHON=python3.11 ...)" % sys.version_info[:2])'
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(EXTRA_PIP)
	@touch $@

venv: $(STAMP) ## create or update the virtualenv

demo: $(STAMP) ## run the demo: simulated incident -> bundle -> report (DEMO_OUT=out/demo)
	$(BIN)/huledu-forensics demo --out $(DEMO_OUT)

test: $(STAMP) ## lint (ruff), type-check (mypy --strict), then run the tests (PYTEST_ARGS=... to choose)
	$(BIN)/ruff check huledu_forensics tests bench
	$(BIN)/mypy huledu_forensics
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP) ## print speed ratios against baselines, on generated data (BENCH_SCALE=0.1 for 1/10)
	@$(BIN)/python -c 'import duckdb' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/run.py --scale $(BENCH_SCALE)

clean: ## remove outputs and caches (keeps .venv)
	rm -rf out build dist .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -print0 | xargs -0 rm -rf

distclean: clean ## also remove the virtualenv
	rm -rf $(VENV)
