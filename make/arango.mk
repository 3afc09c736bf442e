# ArangoDB 3.12 in Docker for the store contract suite (tests/store): the same tests the SQLite
# store passes in every run, here against a real server. Needs Docker with the compose plugin.
# Included by the main Makefile, which defines PY (.venv/bin/python).
PY ?= .venv/bin/python

ARANGO_COMPOSE := docker compose -f docker-compose.arango.yml
ARANGO_TEST_URL ?= http://127.0.0.1:8529
ARANGO_TEST_USER ?= root
ARANGO_TEST_PASSWORD ?= queue-manager-test
ARANGO_WAIT_SECONDS ?= 120

.PHONY: arango-up arango-down test-arango

## Start ArangoDB 3.12 on 127.0.0.1:8529 and wait until it answers with the root password.
arango-up:
	ARANGO_ROOT_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(ARANGO_COMPOSE) up -d
	@echo "waiting for ArangoDB at $(ARANGO_TEST_URL) ..."
	@ARANGO_TEST_URL='$(ARANGO_TEST_URL)' ARANGO_TEST_USER='$(ARANGO_TEST_USER)' \
	ARANGO_TEST_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(PY) -c "$$ARANGO_WAIT_PY" $(ARANGO_WAIT_SECONDS)

## Stop it and discard its data.
arango-down:
	ARANGO_ROOT_PASSWORD=unused $(ARANGO_COMPOSE) down -v

## The store contract suite against a real ArangoDB (then stops it; ARANGO_KEEP=1 keeps it up).
test-arango: arango-up
	ARANGO_TEST_URL='$(ARANGO_TEST_URL)' ARANGO_TEST_USER='$(ARANGO_TEST_USER)' \
	ARANGO_TEST_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(PY) -m pytest tests/store -q -rs; \
	status=$$?; \
	if [ -z "$(ARANGO_KEEP)" ]; then ARANGO_ROOT_PASSWORD=unused $(ARANGO_COMPOSE) down -v; fi; \
	exit $$status

# Polls GET /_api/version with basic auth until it answers 200 (401 means a wrong password).
define ARANGO_WAIT_PY
import base64, os, sys, time, urllib.error, urllib.request
url = os.environ["ARANGO_TEST_URL"].rstrip("/") + "/_api/version"
token = base64.b64encode(f'{os.environ["ARANGO_TEST_USER"]}:{os.environ["ARANGO_TEST_PASSWORD"]}'.encode()).decode()
deadline = time.monotonic() + float(sys.argv[1])
while True:
    try:
        req = urllib.request.Request(url, headers={"Authorization": "Basic " + token})
        with urllib.request.urlopen(req, timeout=3) as resp:
            print("ArangoDB", resp.read().decode()); break
    except urllib.error.HTTPError as exc:
        if exc.code == 401: sys.exit("ArangoDB answers 401: the server has another root password (make arango-down, then retry)")
        last = exc
    except OSError as exc:
        last = exc
    if time.monotonic() > deadline: sys.exit(f"ArangoDB not ready after {sys.argv[1]}s: {last}")
    time.sleep(1)
endef
export ARANGO_WAIT_PY
