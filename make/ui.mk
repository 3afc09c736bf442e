# The dashboard's browser tests (tests/ui) drive Debian's chromium through Playwright's Python
# package; Playwright's own browser download is never used. Included by the main Makefile.
PY ?= .venv/bin/python

.PHONY: ui-deps test-ui bench-ui ui-screenshot

## Debian's chromium at /usr/bin/chromium (once; needs root and apt).
ui-deps:
	@test -x /usr/bin/chromium || { apt-get install -y chromium || { apt-get update && apt-get install -y chromium; }; }

## The dashboard in real Chromium against the real service and workers.
test-ui: $(STAMP) ui-deps
	$(PY) -m pytest tests/ui -q -p no:cacheprovider

## P11 alone (bench/p11_dashboard.py): the queue list's first render with 1,000,000 queues stored,
## and main-thread long tasks with 2,000 queues listed and 500 updates/s; writes BENCHMARKS.md.
bench-ui: $(STAMP) ui-deps
	$(PY) -m bench.run --only p11

## docs/dashboard.png, the README's screenshot, taken by the historical-pipeline test.
ui-screenshot: $(STAMP) ui-deps
	UI_SCREENSHOT=docs/dashboard.png $(PY) -m pytest -q -p no:cacheprovider \
		"tests/ui/test_pipelines.py::test_historical_pipeline_runs_in_data_order_on_the_page"
