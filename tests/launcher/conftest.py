"""One launcher contract, run on every launcher (docs/architecture.md): the embedded
`LocalLauncher` and the Kubernetes launcher against the real kube-apiserver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.launcher.harness import Harness, KubeHarness, LocalHarness


@pytest.fixture(params=["local", pytest.param("kubernetes", marks=pytest.mark.kube)])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    made: Harness
    if request.param == "local":
        made = LocalHarness(tmp_path)
    else:
        # Asked for here, not as arguments, so the local half never starts an API server.
        server = request.getfixturevalue("kube_apiserver")
        made = KubeHarness(server, request.getfixturevalue("kube_namespace"))
    try:
        yield made
    finally:
        await made.close()
