# The README's commands. `make run` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= var/omo.sqlite
HOST   ?= 127.0.0.1
PORT   ?= 8000
PEOPLE ?= 5000
# the demo database's admin password (a local demo only; create real users with omo user create)
DEMO_PASSWORD ?= omo-demo-admin
export OMO_DATABASE_URL ?= sqlite:///$(DB)

.PHONY: run serve test lint pytest bench screenshots clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

## run: set up; on first run build the demo world into the SQLite file; serve http://$(HOST):$(PORT)
run: $(VENV)/.installed
	mkdir -p $(dir $(DB))
	@if [ ! -f $(DB) ]; then \
		rm -f $(DB).building*; \
		OMO_DATABASE_URL=sqlite:///$(DB).building $(BIN)/omo db upgrade && \
		OMO_DATABASE_URL=sqlite:///$(DB).building $(BIN)/omo demo --no-serve --people $(PEOPLE) \
			--trade-days 30 && \
		OMO_DATABASE_URL=sqlite:///$(DB).building $(BIN)/omo refresh && \
		for who in staff manager; do echo "$(DEMO_PASSWORD)" | \
			OMO_DATABASE_URL=sqlite:///$(DB).building $(BIN)/omo user create --username $$who \
			--role $$who --store TPE-101 --password-stdin || exit 1; done && \
		mv $(DB).building $(DB); \
	else echo "$(DB) exists: serving it (make clean to rebuild the demo)"; fi
	$(BIN)/omo db upgrade
	$(BIN)/omo journeys seed
	@echo "$(DEMO_PASSWORD)" | $(BIN)/omo user create --username admin --role admin \
		--password-stdin --if-missing
	@echo "admin UI: http://$(HOST):$(PORT)/ui/  (user admin, password $(DEMO_PASSWORD): the demo's only; the demo also has staff and manager of the store TPE-101)"
	$(BIN)/omo serve --host $(HOST) --port $(PORT)

## test: lint, type-check and run the whole suite (SQLite and a throwaway PostgreSQL server)
test: lint pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# one worker per core, each starting its own PostgreSQL. worksteal hands each worker half the
# tests in file order and evens the end; loadfile would run one of schemathesis's cases (they
# share one node id)
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q -n auto --dist worksteal

## bench: print the benchmark figures (not part of the test suite)
bench: $(VENV)/.installed-dev
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/import.py

## screenshots: docs/screenshots/ from the end-to-end tests' pages (needs chromium)
screenshots: $(VENV)/.installed-dev
	OMO_SCREENSHOTS=docs/screenshots $(BIN)/pytest -q tests/e2e

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
