# Two entry points, both self-installing on a fresh machine (see README "Quick start"):
#   make up    set up what running needs, then run the local pipeline in the foreground
#   make test  set up the test toolchain too, then lint and run the whole test suite (what
#              .ci/run calls), then the client, Flask, app-metrics and aggregator suites under
#              Python 3.12 and 3.13
# and, while working (CONTRIBUTING.md):
#   make check lint (ruff, mypy) and the tests not marked slow, in under a minute
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python

.PHONY: up test check lint bench system-deps other-pythons node-deps
.PRECIOUS: $(VENV)/.installed-%

# One stamp per set of extras; re-install whenever the declared dependencies change.
$(VENV)/.installed-%: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

system-deps:
	./scripts/system-deps

# npm senders the aggregator's tests drive (tests/node/package-lock.json pins them)
node-deps:
	npm ci --prefix tests/node --omit=optional --no-audit --no-fund

# The storage side, Grafana as code and the demo: not the test toolchain.
up: $(VENV)/.installed-run
	$(VENV)/bin/statsd-metrics up $(ARGS)

lint: $(VENV)/.installed-all
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

check: lint
	$(PY) -m pytest -q -m "not slow" $(ARGS)

test: $(VENV)/.installed-all system-deps node-deps lint
	$(PY) -m pytest $(ARGS)
	./scripts/other-pythons

# The parts that run on Python 3.12 and later, under each such Python found (carbon does not).
other-pythons:
	./scripts/other-pythons

bench: $(VENV)/.installed-all
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
