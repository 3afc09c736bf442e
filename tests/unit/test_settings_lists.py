"""List and mapping settings are written the way operators write them: comma-separated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from queue_manager.settings import Settings


def test_comma_separated_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_IMAGES", "registry.example/loader:1.2, registry.example/loader:1.3")
    monkeypatch.setenv("K8S_NODE_SELECTOR", "disktype=ssd,zone=a")
    monkeypatch.setenv("OIDC_ROLE_MAP", "platform-ops=operator,traders=viewer")
    settings = Settings(_env_file=None)
    assert settings.allowed_images == ["registry.example/loader:1.2", "registry.example/loader:1.3"]
    assert settings.k8s_node_selector == {"disktype": "ssd", "zone": "a"}
    assert settings.oidc_role_map == {"platform-ops": "operator", "traders": "viewer"}


def test_a_role_map_naming_an_unknown_role_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_ROLE_MAP", "platform-ops=root")
    with pytest.raises(ValidationError, match="claim=role pairs"):
        Settings(_env_file=None)
