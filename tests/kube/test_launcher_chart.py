"""The Helm chart (deploy/helm/queue-manager) against the real kube-apiserver: its manifests are
accepted (server-side dry-run), and its Role is exactly enough for the launcher
(docs/operations.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient, KubeConfig, codecs

from queue_manager.adapters.kube import KubeLauncher
from queue_manager.domain.errors import LaunchFailed
from queue_manager.ports import JobPhase
from queue_manager.settings import Settings
from tests.kube.test_launcher_helpers import (
    CHART,
    Watcher,
    make_launcher,
    render_chart,
    simple_spec,
)
from tests.support.kube_apiserver import KubeAPIServer

pytestmark = pytest.mark.kube

RELEASE = "qm"
ROLE_RULES = [
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]  # fmt: skip


@pytest.fixture
async def admin(kube_apiserver: KubeAPIServer) -> AsyncIterator[AsyncClient]:
    client = AsyncClient(KubeConfig.from_file(kube_apiserver.kubeconfig_path))
    try:
        yield client
    finally:
        await client.close()


def test_the_chart_has_every_piece() -> None:
    rendered = render_chart(RELEASE, "streamforge")
    kinds = {doc["kind"] for doc in rendered.values()}
    assert kinds == {
        "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "ConfigMap",
    }  # fmt: skip
    assert rendered["role.yaml"]["rules"] == ROLE_RULES  # nothing broader
    binding = rendered["rolebinding.yaml"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RELEASE,
    }  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": RELEASE, "namespace": "streamforge"}
    ]
    pod = rendered["deployment.yaml"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == RELEASE
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    probes = {
        kind: container[kind]["httpGet"]["path"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": "/health/startup",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    assert container["envFrom"] == [{"configMapRef": {"name": RELEASE}}]
    secret_refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e
    }
    assert set(secret_refs) == {"KAFKA_PASSWORD", "ARANGO_PASSWORD", "AUTH_SESSION_SECRET"}
    # The only literal values are where the Kafka CA goes; no CA is named by default.
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert literal == {"K8S_CA_KEY": "ca.crt", "K8S_CA_MOUNT_PATH": "/etc/streamforge/kafka-ca"}
    assert not [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
    # Auth comes from an existing Secret: the tokens file mounted where AUTH_TOKENS_FILE says.
    auth_secret = secret_refs["AUTH_SESSION_SECRET"]["name"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "auth"]
    assert volume["secret"]["secretName"] == auth_secret
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "auth"]
    assert mount["readOnly"] is True
    config = rendered["configmap.yaml"]["data"]
    tokens_path = f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}"
    assert config["AUTH_TOKENS_FILE"] == tokens_path
    assert config["AUTH_MODE"] == "auto"
    assert config["K8S_NAMESPACE"] == "streamforge"
    assert config["LAUNCHER_BACKEND"] == "kubernetes"
    assert all(isinstance(v, str) for v in config.values())
    assert not any("PASSWORD" in key for key in config)


@pytest.mark.parametrize(
    ("values", "source", "env"),
    [
        (
            {"caSecret": "kafka-ca"},
            {"secret": {"secretName": "kafka-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"K8S_CA_SECRET": "kafka-ca"},
        ),
        (
            {"caConfigMap": "platform-ca", "caKey": "root.pem", "caMountPath": "/etc/kafka/ca"},
            {"configMap": {"name": "platform-ca",
                           "items": [{"key": "root.pem", "path": "root.pem"}]}},
            {"K8S_CA_CONFIGMAP": "platform-ca"},
        ),
    ],
)  # fmt: skip
def test_the_chart_mounts_the_kafka_ca_and_hands_it_to_the_jobs(
    values: dict[str, str], source: dict[str, Any], env: dict[str, str]
) -> None:
    rendered = render_chart(RELEASE, "streamforge", {"kafka": values})
    pod = rendered["deployment.yaml"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    mount_path = values.get("caMountPath", "/etc/streamforge/kafka-ca")
    key = values.get("caKey", "ca.crt")
    # The service's own CA_PATH, and the K8S_CA_* settings that mount the same CA into Jobs.
    assert literal == {
        **env,
        "K8S_CA_KEY": key,
        "K8S_CA_MOUNT_PATH": mount_path,
        "CA_PATH": f"{mount_path}/{key}",
    }
    (volume,) = [v for v in pod["volumes"] if v["name"] == "kafka-ca"]
    assert volume == {"name": "kafka-ca", **source}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-ca"]
    assert mount == {"name": "kafka-ca", "mountPath": mount_path, "readOnly": True}
    # The settings the chart hands over are ones the service reads, with the same meaning.
    settings = Settings(_env_file=None, **{k.lower(): v for k, v in literal.items()})  # type: ignore[call-arg]
    assert settings.k8s_ca_path == literal["CA_PATH"]


def test_dockerfile_is_slim_and_non_root() -> None:
    text = (CHART.parents[1] / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "pip install ." in text
    assert "USER 10001" in text
    assert 'CMD ["serve", "--host", "0.0.0.0"]' in text
    assert 'ENTRYPOINT ["queue-manager"]' in text


async def test_rendered_manifests_pass_server_side_dry_run(
    admin: AsyncClient, kube_namespace: str
) -> None:
    for values in ({}, {"kafka": {"caSecret": "kafka-ca"}}, {"kafka": {"caConfigMap": "ca"}}):
        for name, manifest in render_chart(RELEASE, kube_namespace, values).items():
            obj = codecs.from_dict(manifest)
            created: Any = await admin.create(obj, namespace=kube_namespace, dry_run=True)  # type: ignore[call-overload]
            assert created.metadata.name == RELEASE, name


async def _install_rbac(admin: AsyncClient, namespace: str) -> None:
    rendered = render_chart(RELEASE, namespace)
    for name in ("serviceaccount.yaml", "role.yaml", "rolebinding.yaml"):
        await admin.create(codecs.from_dict(rendered[name]), namespace=namespace)  # type: ignore[call-overload]


async def _access(server: KubeAPIServer, namespace: str, attrs: dict[str, str]) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:{RELEASE}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {"namespace": namespace, **attrs},
        },
    }
    answer = await asyncio.to_thread(
        server.request, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review
    )
    return bool(answer["status"].get("allowed"))


async def test_service_account_bound_to_the_chart_role_runs_the_launcher(
    kube_apiserver: KubeAPIServer, admin: AsyncClient, kube_namespace: str, tmp_path: Path
) -> None:
    await _install_rbac(admin, kube_namespace)
    token = await asyncio.to_thread(
        kube_apiserver.service_account_token, kube_namespace, RELEASE, create=False
    )
    kubeconfig = kube_apiserver.write_kubeconfig(
        tmp_path / "sa.kubeconfig", token, namespace=kube_namespace
    )
    launcher = make_launcher(kube_apiserver, kube_namespace, kubeconfig=kubeconfig)
    await launcher.start()
    try:
        await launcher.ping()
        async with Watcher(launcher) as watcher:
            spec = simple_spec("qm-rbac0000-0-loader-producer", "q-rbac", 0)
            await launcher.launch(spec)
            await launcher.launch(spec)  # the 409 path needs nothing more
            await watcher.wait_for(spec.name, JobPhase.ACTIVE)
            assert [j.name for j in await launcher.list_jobs()] == [spec.name]
            await launcher.delete(spec.name)
            await launcher.delete(spec.name)  # the 404 path too
            await watcher.wait_for(spec.name, JobPhase.GONE)
    finally:
        await launcher.stop()

    # Another namespace is out of reach: the API's 403 is a refused launch, not an outage.
    elsewhere = KubeLauncher("default", kubeconfig=kubeconfig, in_cluster=False, qps=0)
    await elsewhere.start()
    try:
        with pytest.raises(LaunchFailed) as info:
            await elsewhere.launch(simple_spec("qm-rbac0000-1-loader-producer", "q-rbac", 1))
        assert "403" in info.value.message
    finally:
        await elsewhere.stop()

    # Nothing broader than the Role: a sample of what the service must not be able to do.
    allowed = [
        {"group": "batch", "resource": "jobs", "verb": verb}
        for verb in ("create", "get", "list", "watch", "delete")
    ] + [{"group": "", "resource": "pods", "verb": v} for v in ("get", "list", "watch")]
    denied = [
        {"group": "batch", "resource": "jobs", "verb": "update"},
        {"group": "batch", "resource": "jobs", "verb": "patch"},
        {"group": "batch", "resource": "jobs", "verb": "deletecollection"},
        {"group": "batch", "resource": "jobs", "subresource": "status", "verb": "patch"},
        {"group": "", "resource": "pods", "verb": "create"},
        {"group": "", "resource": "pods", "verb": "delete"},
        {"group": "", "resource": "pods", "subresource": "exec", "verb": "create"},
        {"group": "", "resource": "secrets", "verb": "get"},
        {"group": "", "resource": "secrets", "verb": "list"},
        {"group": "", "resource": "configmaps", "verb": "get"},
        {"group": "batch", "resource": "cronjobs", "verb": "create"},
        {"group": "apps", "resource": "deployments", "verb": "create"},
        {"group": "rbac.authorization.k8s.io", "resource": "roles", "verb": "create"},
    ]
    for attrs in allowed:
        assert await _access(kube_apiserver, kube_namespace, attrs), attrs
    for attrs in denied:
        assert not await _access(kube_apiserver, kube_namespace, attrs), attrs


def test_role_template_is_plain_yaml_apart_from_its_names() -> None:
    # The Role must stay readable by tools that do not render templates: only the metadata
    # is templated, the rules are literal.
    text = (CHART / "templates" / "role.yaml").read_text()
    rules_part = text[text.index("rules:") :]
    assert "{{" not in rules_part
    assert yaml.safe_load(rules_part)["rules"] == ROLE_RULES
