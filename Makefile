# Two entry points, both self-installing on a fresh machine (see README "Quick start"):
#   make up    set up what running needs, then run the local pipeline in the foreground
#   make test  set up the test toolchain too, then run ruff and the whole test suite
#              (what .ci/run calls)
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python

.PHONY: up test lint bench system-deps
.PRECIOUS: $(VENV)/.installed-%

# One stamp per set of extras; re-install whenever the declared dependencies change.
$(VENV)/.installed-%: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$*]'
	touch $@

system-deps:
	./scripts/system-deps

# The storage side, Grafana as code and the demo: not the test toolchain.
up: $(VENV)/.installed-run
	$(VENV)/bin/statsd-metrics up $(ARGS)

lint: $(VENV)/.installed-all
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: $(VENV)/.installed-all system-deps lint
	$(PY) -m pytest $(ARGS)

bench: $(VENV)/.installed-all
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
