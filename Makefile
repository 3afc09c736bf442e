# queue-manager: `make run` serves with embedded defaults, `make test` runs every test tier.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# where `make run` serves: `make run PORT=8080 HOST=0.0.0.0`, or HOST/PORT in the environment
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-unit lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/queue-manager serve --host '$(HOST)' --port '$(PORT)'

test: $(STAMP) ui-deps
	$(PY) -m pytest -q -rs -p no:cacheprovider --durations=15

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
