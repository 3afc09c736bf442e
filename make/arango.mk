# ArangoDB 3.12 in Docker for the store contract suite (tests/store): the same tests the SQLite
# store passes in every run, here against a real server. Needs Docker with the compose plugin.
# Included by the main Makefile, which defines PY (.venv/bin/python).
#
#   make test-arango                      a single server on 127.0.0.1:8529
#   make test-arango ARANGO_MODE=cluster  three agents, three DB-Servers, two coordinators
#                                         (127.0.0.1:8539, 127.0.0.1:8549); ARANGO_ONE_SHARD=true
#                                         makes the test databases OneShard
#   make test-arango ARANGO_TEST_URL=...  a server (or coordinators, comma-separated) of your own:
#                                         nothing is started
PY ?= .venv/bin/python

ARANGO_MODE ?= single
ARANGO_TEST_USER ?= root
ARANGO_TEST_PASSWORD ?= queue-manager-test
ARANGO_WAIT_SECONDS ?= 180
ARANGO_COMPOSE := docker compose -f docker-compose.arango.yml
ifeq ($(ARANGO_MODE),cluster)
ARANGO_TEST_URL ?= http://127.0.0.1:8539,http://127.0.0.1:8549
ARANGO_UP := $(ARANGO_COMPOSE) --profile cluster up -d arango-cluster-init
ARANGO_DOWN := $(ARANGO_COMPOSE) --profile cluster down -v
else ifeq ($(ARANGO_MODE),single)
ARANGO_TEST_URL ?= http://127.0.0.1:8529
ARANGO_UP := $(ARANGO_COMPOSE) up -d arangodb
ARANGO_DOWN := $(ARANGO_COMPOSE) down -v
else
$(error ARANGO_MODE must be single or cluster, not $(ARANGO_MODE))
endif
# a URL given on the command line names a server of your own: nothing to start or stop
ARANGO_OWN := $(filter command line environment,$(origin ARANGO_TEST_URL))

.PHONY: arango-up arango-down test-arango

## Start ArangoDB (ARANGO_MODE=single|cluster) and wait until it answers with the root password.
arango-up:
ifeq ($(ARANGO_OWN),)
	ARANGO_ROOT_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(ARANGO_UP)
endif
	@echo "waiting for ArangoDB at $(ARANGO_TEST_URL) ..."
	@ARANGO_TEST_URL='$(ARANGO_TEST_URL)' ARANGO_TEST_USER='$(ARANGO_TEST_USER)' \
	ARANGO_TEST_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(PY) -c "$$ARANGO_WAIT_PY" \
	$(ARANGO_WAIT_SECONDS) $(ARANGO_MODE)

## Stop it and discard its data.
arango-down:
	ARANGO_ROOT_PASSWORD=unused $(ARANGO_DOWN)

## The store contract suite against a real ArangoDB (then stops it; ARANGO_KEEP=1 keeps it up).
test-arango: arango-up
	ARANGO_TEST_URL='$(ARANGO_TEST_URL)' ARANGO_TEST_USER='$(ARANGO_TEST_USER)' \
	ARANGO_TEST_PASSWORD='$(ARANGO_TEST_PASSWORD)' $(PY) -m pytest tests/store -q -rs; \
	status=$$?; \
	if [ -z "$(ARANGO_KEEP)$(ARANGO_OWN)" ]; then ARANGO_ROOT_PASSWORD=unused $(ARANGO_DOWN); fi; \
	exit $$status

# Polls every host of ARANGO_TEST_URL until each answers GET /_api/version with basic auth; a
# cluster also until every member reports GOOD. A single server answering 401 has another root
# password; a cluster answers 401 until its root password is set (arango-cluster-init).
define ARANGO_WAIT_PY
import base64, json, os, sys, time, urllib.error, urllib.request
hosts = [h.strip().rstrip("/") for h in os.environ["ARANGO_TEST_URL"].split(",") if h.strip()]
token = base64.b64encode(f'{os.environ["ARANGO_TEST_USER"]}:{os.environ["ARANGO_TEST_PASSWORD"]}'.encode()).decode()
deadline, cluster = time.monotonic() + float(sys.argv[1]), sys.argv[2] == "cluster"
def get(url):
    req = urllib.request.Request(url, headers={"Authorization": "Basic " + token})
    with urllib.request.urlopen(req, timeout=3) as resp:
        return json.loads(resp.read().decode())
def ready():
    for host in hosts:
        print("ArangoDB", host, get(host + "/_api/version"))
    if cluster:
        health = get(hosts[0] + "/_admin/cluster/health")["Health"]
        roles = [m.get("Role") for m in health.values() if m.get("Status") == "GOOD"]
        if len(roles) < len(health) or roles.count("DBServer") < 3:
            raise OSError(f"cluster members not all GOOD yet: {sorted(roles)}")
while True:
    try:
        ready(); break
    except urllib.error.HTTPError as exc:
        if exc.code == 401 and not cluster: sys.exit("ArangoDB answers 401: the server has another root password (make arango-down, then retry)")
        last = exc
    except OSError as exc:
        last = exc
    if time.monotonic() > deadline: sys.exit(f"ArangoDB not ready after {sys.argv[1]}s: {last}")
    time.sleep(1)
endef
export ARANGO_WAIT_PY
