# queue-manager: `make run` serves with embedded defaults, `make test` runs every test tier.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# where `make run` serves: `make run PORT=8080 HOST=0.0.0.0`, or HOST/PORT in the environment
HOST ?= 127.0.0.1
PORT ?= 8000
# test processes side by side (pytest-xdist, whole files each): most tests wait on real Kafka,
# kube-apiserver, Chromium and worker processes, so two keep two CPUs busy; 1 runs them in one
TEST_WORKERS ?= 2

.PHONY: install run test test-unit lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/queue-manager serve --host '$(HOST)' --port '$(PORT)'

# The Kafka jars and the kube binaries first, with their progress shown (a cold kube build is
# ~10 minutes); each test process then starts its own broker and API server from them.
test: $(STAMP) ui-deps kafka-deps kube-bins
	$(PY) -m pytest -q -rs -p no:cacheprovider --durations=15 -n $(TEST_WORKERS) --dist loadfile

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .cache data

-include make/*.mk
