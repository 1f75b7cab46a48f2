# partledger — `make demo` and `make test` work on a fresh machine (Python 3.11, Rust, registries).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
NATIVE_SRC := $(shell find native -name '*.rs' -o -name 'Cargo.toml' | grep -v target)
PYTEST_ARGS ?=

.PHONY: all venv demo test lint typecheck pytest sim soak fuzz bench bench-smoke clean system-deps

all: test

system-deps:
	@bash scripts/system-deps.sh

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.built: $(BIN)/python pyproject.toml $(NATIVE_SRC)
	@bash scripts/system-deps.sh
	$(BIN)/pip install -q -e ".[test,bench]"
	@touch $@

venv: $(VENV)/.built

demo: venv
	$(BIN)/python -m cli.demo

lint: venv
	$(BIN)/ruff check ledger consensus p2p cli tests bench
	$(BIN)/python -m mypy.stubtest ledger._native

typecheck: venv
	$(BIN)/mypy

pytest: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test: lint typecheck pytest

# 100,000 seeds take hours on 2 cores: split with e.g. `make sim SIM_START=50000 SIM_SEEDS=50000`
SIM_SEEDS ?= 100000
SIM_START ?= 0
sim: venv
	$(BIN)/partledger sim --nodes 4 --byzantine 1 --seeds $(SIM_SEEDS) --start $(SIM_START)

soak: venv
	$(BIN)/python -m pytest -q -s --run-slow -m slow tests/multiprocess tests/faults

fuzz: venv
	$(BIN)/python -m tests.fuzz.run --seconds 60 --jobs 2

bench: venv
	$(BIN)/python bench/run_all.py --runs 3 --out /tmp/partledger-bench/results.json

bench-smoke: venv
	$(BIN)/python bench/run_all.py --smoke

clean:
	rm -rf $(VENV) native/target build dist
