# Benchmarks: bench/ measures each performance goal beside its baseline and writes
# BENCHMARKS.md. Not part of `make test`. Included by the main Makefile (defines PY).
PY ?= .venv/bin/python

.PHONY: bench bench-quick bench-deps

## wrk (Debian package) for P5 and py-spy for profiles; the Kafka jars and kube binaries come
## from the existing kafka-deps / kube-bins targets.
bench-deps: kafka-deps kube-bins
	@command -v wrk >/dev/null || { apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; }
	@test -x $(VENV)/bin/py-spy || $(PY) -m pip install -q py-spy

## Every figure at full size (P1 100k events, P2 60 s, P3 1,000,000 queues, P4 1,000 starts,
## P6 1,000 clients, P8 10,000 queues, P9 2×2 runs of 50k events, P10 1,000 queued, P11 the
## dashboard on P3's 1,000,000 queues); tens of minutes on 2 CPUs. BENCH_PROFILE=p1,p5 adds
## py-spy profiles.
bench: $(STAMP) bench-deps
	$(PY) -m bench.run

## The same figures at reduced sizes (P2 10 s, P3 100,000 queues, P4 100 starts, P6 200 clients,
## P8 2,000 queues, P9 10k events, P10 200 queued, P11 100,000 queues and 5 s of updates).
bench-quick: $(STAMP) bench-deps
	$(PY) -m bench.run --quick
