# The two commands a newcomer needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run sample test lint install clean bench

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The whole service on an embedded broker (memory only) with a simulated contact centre; the
# dashboard link (with its token) is printed at start. Stops by itself after RUN_SECONDS.
# Letters land in demo-letters/ (cleared with demo.db: they belong to that database), in the
# formats of RUN_LETTER_FORMATS (PDF keeps up with the demo; html,txt is faster). Delivered
# letters: email as .eml files in demo-mail/ (the demo's local SMTP sink), post in print runs
# in demo-print-queue/.
RUN_SECONDS ?= 120
RUN_LETTER_FORMATS ?= pdf,html,txt
run: $(STAMP)
	rm -rf demo.db demo.db-wal demo.db-shm demo-letters demo-mail demo-print-queue
	COMPLAINTS_LETTERS_DIR=demo-letters COMPLAINTS_LETTER_FORMATS=$(RUN_LETTER_FORMATS) \
	  COMPLAINTS_DEMO_MAIL_DIR=demo-mail COMPLAINTS_PRINT_DIR=demo-print-queue \
	  $(BIN)/complaints up --demo --duration $(RUN_SECONDS) --db sqlite:///demo.db

# The offline path: replay the bundled sample file by event time and print the backlog.
sample: $(STAMP)
	rm -f sample.db sample.db-wal sample.db-shm
	$(BIN)/complaints ingest workflow/samples/sample-events.jsonl --db sqlite:///sample.db
	$(BIN)/complaints backlog --db sqlite:///sample.db --as-of 2026-04-30T23:59:59+01:00

# The dashboard test drives Debian's Chromium (never a browser download of its own).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

# The secured-broker test puts Debian's stunnel4 (TLS) in front of the embedded broker.
STUNNEL := /usr/bin/stunnel4
$(STUNNEL):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stunnel4

lint: $(STAMP)
	$(BIN)/ruff check workflow consumers letters reporting tests bench
	$(BIN)/mypy

test: lint $(CHROMIUM) $(STUNNEL)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) demo.db* sample.db* demo-letters demo-mail demo-print-queue
