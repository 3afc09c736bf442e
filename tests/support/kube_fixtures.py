"""pytest fixtures for tests that need the real kube-apiserver (``kube_apiserver.py`` here).

Bring them into a directory's conftest.py with ``from tests.support.kube_fixtures import
kube_apiserver, kube_namespace, pytest_collection_finish`` (see tests/kube/conftest.py).

* ``kube_apiserver``: one etcd + kube-apiserver for the whole session, stopped when the session
  ends; both die with the Python process even if pytest itself is killed.
* ``kube_namespace``: a fresh namespace per test (nothing deletes namespaces' contents without
  a controller-manager, so tests never share one).
* ``pytest_collection_finish``: builds the binaries (``infra/kube/build.sh``) before the first
  test when a ``kube``-marked test is selected, so a cold build (~10 minutes) does not count
  against the first test's time-out. A no-op once ``.cache/kube`` has them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from tests.support.kube_apiserver import (
    KubeAPIServer,
    KubeAPIServerError,
    KubeBinaries,
    ensure_binaries,
    start_kube_apiserver,
)

_binaries: KubeBinaries | None = None


def _kube_binaries() -> KubeBinaries:
    global _binaries
    if _binaries is None:
        _binaries = ensure_binaries()
    return _binaries


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(item.get_closest_marker("kube") for item in session.items):
        return
    capture = session.config.pluginmanager.getplugin("capturemanager")
    # Show the build's progress: a cold build is minutes of otherwise silent waiting.
    uncaptured = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    try:
        with uncaptured:
            _kube_binaries()
    except KubeAPIServerError as exc:
        raise pytest.UsageError(f"cannot build the kube test binaries: {exc}") from exc


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPIServer]:
    """The session's kube-apiserver: ``url``, ``ca_path``, ``admin_token``,
    ``kubeconfig_path`` (admin), ``write_kubeconfig()``, ``service_account_token()``."""
    try:
        server = start_kube_apiserver(tmp_path_factory.mktemp("kube"), _kube_binaries())
    except KubeAPIServerError as exc:
        pytest.fail(f"could not start the test kube-apiserver: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube_namespace(kube_apiserver: KubeAPIServer) -> str:
    """A namespace that no other test uses, created as the admin."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    kube_apiserver.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    return name
