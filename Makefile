# Two entry points, both self-installing on a fresh machine (see README "Quick start"):
#   make up    set up, then run the local pipeline in the foreground
#   make test  set up, then run ruff and the whole test suite (what .ci/run calls)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: up test lint bench system-deps node-deps

# Re-install whenever the declared dependencies change.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	touch $@

system-deps:
	./scripts/system-deps

# npm senders the aggregator's tests drive (tests/node/package-lock.json pins them)
node-deps:
	npm ci --prefix tests/node --omit=optional --no-audit --no-fund

up: $(STAMP)
	$(VENV)/bin/statsd-metrics up $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(STAMP) system-deps node-deps lint
	$(PY) -m pytest $(ARGS)

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
