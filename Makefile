# The two commands a newcomer needs: `make run` and `make test`. Both build .venv when it is missing
# or pyproject.toml or a lock file changed, so each is the only command needed on a fresh machine.
# What is installed is exactly requirements/dev.txt (the Docker image: requirements/prod.txt), both
# generated from pyproject.toml by `make lock`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCKS := requirements/prod.txt requirements/dev.txt
# Resolve for every platform, from the oldest Python the project supports; `make lock` keeps the
# current pins where pyproject.toml allows them (LOCK_ARGS=--upgrade moves everything to the newest,
# LOCK_ARGS="--upgrade-package NAME" one package).
LOCK_ARGS ?=
COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--generate-hashes --custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: run test check check-static fmt fmt-check lint types imports bench lock clean

$(STAMP): pyproject.toml $(LOCKS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

lock: $(STAMP)  ## re-pin requirements/*.txt after changing pyproject.toml's dependencies; commit them
	$(COMPILE) -o requirements/prod.txt
	$(COMPILE) --extra dev -c requirements/prod.txt -o requirements/dev.txt

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
