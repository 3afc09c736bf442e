# Real kube-apiserver + etcd (envtest-style) for the test suite: tests/support/kube_apiserver.py.
# Included by the main Makefile, which defines PY (.venv/bin/python).
PY ?= .venv/bin/python

.PHONY: kube-bins test-kube

## Build kube-apiserver (k8s.io/kubernetes, infra/kube/go.mod) and etcd (infra/kube/etcd) from
## the Go module proxy into .cache/kube/ (needs Go >= 1.26; ~10 minutes cold on 2 cores).
## Later calls return at once.
kube-bins:
	bash infra/kube/build.sh

## Prove the test API server is real: Jobs, the status subresource, watches, RBAC.
test-kube: kube-bins
	$(PY) -m pytest tests/kube -q -p no:cacheprovider
