# The two commands a newcomer needs: `make run` and `make test`. Both build .venv when it is missing
# or pyproject.toml changed, so each is the only command needed on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test check check-static fmt fmt-check lint types imports bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)  ## both services, plus sandbox emulators for every upstream without credentials
	$(BIN)/python -m sandbox.stack

test: $(STAMP)  ## the whole suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: check-static test  ## what CI runs

bench: $(STAMP)  ## benchmarks, loopback only (not part of make test); writes bench/RESULTS.md
	$(BIN)/python -m bench

check-static: fmt-check lint types imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

fmt-check: $(STAMP)
	$(BIN)/ruff format --check .

lint: $(STAMP)
	$(BIN)/ruff check .

types: $(STAMP)
	$(BIN)/mypy

imports: $(STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
