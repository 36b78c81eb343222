# lifecycle: every target creates .venv and installs the project first when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast dev lint clean histories

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install  ## the main job: the four shipped journeys simulated for 150 synthetic users
	$(BIN)/lifecycle demo

test: install  ## the whole suite, both tiers (PostgreSQL tests skip locally if none is running)
	$(BIN)/pytest -q

test-fast: install  ## the fast tier: no slow tests (markers in tests/conftest.py), on SQLite
	$(BIN)/pytest -q -m "not slow"

dev: install  ## Temporal dev server + API + worker; Ctrl-C stops everything
	$(BIN)/lifecycle dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) .lifecycle build *.egg-info

histories: install  ## re-record the replay histories of the shipped journeys
	$(BIN)/python tests/workflows/record_histories.py
