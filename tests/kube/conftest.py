"""Tests against the real kube-apiserver; fixtures come from tests/conftest.py."""
