# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	rm -f demo.db demo.db-wal demo.db-shm
	$(BIN)/complaints ingest workflow/samples/sample-events.jsonl --db sqlite:///demo.db
	$(BIN)/complaints backlog --db sqlite:///demo.db --as-of 2026-04-30T23:59:59+01:00

lint: $(STAMP)
	$(BIN)/ruff check workflow consumers letters reporting tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo.db
