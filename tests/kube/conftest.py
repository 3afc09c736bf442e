"""Tests against the real kube-apiserver; fixtures: tests/support/kube_fixtures.py (tests/conftest.py)."""
