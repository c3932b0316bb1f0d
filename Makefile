# Two entry points, both self-installing on a fresh machine (see README "Quick start"):
#   make up    set up, then run the local pipeline in the foreground
#   make test  set up, then lint and run the whole test suite (what .ci/run calls), then the
#              client, Flask, app-metrics and aggregator suites under Python 3.12 and 3.13
# and, while working (CONTRIBUTING.md):
#   make check lint (ruff, mypy) and the tests not marked slow, in under a minute
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up test check lint bench system-deps other-pythons

# Re-install whenever the declared dependencies change.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

system-deps:
	./scripts/system-deps

up: $(STAMP)
	$(VENV)/bin/statsd-metrics up $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

check: lint
	$(PY) -m pytest -q -m "not slow" $(ARGS)

test: $(STAMP) system-deps lint
	$(PY) -m pytest $(ARGS)
	./scripts/other-pythons

# The parts that run on Python 3.12 and later, under each such Python found (carbon does not).
other-pythons:
	./scripts/other-pythons

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
