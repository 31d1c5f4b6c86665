# `make run` and `make test` work on a fresh clone: they create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint typecheck layers unit soak fuzz compare bench mutate

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[shop]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@ $(RUN_STAMP)

run: $(RUN_STAMP)
	$(BIN)/gateway serve

test: lint typecheck layers unit

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# import-linter: the gateway imports nothing of the example, and each stack stays on its side.
layers: $(DEV_STAMP)
	$(BIN)/lint-imports

unit: $(DEV_STAMP)
	$(BIN)/pytest

# A minute of mixed load on both stacks at once; fails if memory, threads, descriptors or
# database connections grow. Longer: make soak SOAK_ARGS="--duration 600".
SOAK_ARGS ?= --duration 60
soak: $(DEV_STAMP)
	$(BIN)/python -m loadtests.soak $(SOAK_ARGS)

# The fuzz tests at length: 200 examples per v2 operation (Schemathesis), per legacy
# property and per paired route of the differential test (Hypothesis), new inputs each run. GATEWAY_TEST_DATABASE_URL adds PostgreSQL.
FUZZ_EXAMPLES ?= 200
fuzz: $(DEV_STAMP)
	GATEWAY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest --timeout 900 \
		tests/v2_fastapi/test_schemathesis.py tests/legacy_flask/test_fuzz.py \
		tests/contract/test_differential_fuzz.py

# The side-by-side load comparison (see the README): legacy, v2 and the gunicorn baseline.
COMPARE_ARGS ?= --users 20 --spawn-rate 10 --run-time 20s --baseline
compare: $(DEV_STAMP)
	$(BIN)/python -m loadtests.compare $(COMPARE_ARGS)

# The benchmark of ratios (see the README): wrk on one core, the servers on the other.
# Judged: make bench BENCH_ARGS=--check. PostgreSQL: BENCH_ARGS="--database-url postgresql://...".
BENCH_ARGS ?=
bench: $(DEV_STAMP)
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m loadtests.bench $(BENCH_ARGS)

# Mutation testing (Cosmic Ray, tools/mutate.py): the mount, the body limit, money, inventory,
# tokens and the ledger, each module group against its own fast tests on SQLite, in a copy of
# the tree. Stops after MUTATE_MINUTES and prints the surviving mutants. Not part of `make test`.
# One group: make mutate MUTATE_ARGS="--group money".
MUTATE_MINUTES ?= 25
MUTATE_ARGS ?=
mutate: $(DEV_STAMP)
	$(BIN)/python tools/mutate.py --minutes $(MUTATE_MINUTES) $(MUTATE_ARGS)
