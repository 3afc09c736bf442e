"""From the settings to a Job template, and to a client of the right cluster: in-cluster
config when running in a Pod, else `KUBECONFIG` (or `~/.kube/config`)."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import httpx2
import yaml  # type: ignore[import-untyped]
from lightkube import AsyncClient, ConfigError, KubeConfig
from lightkube.config.client_adapter import verify_cluster

from queue_manager.adapters.kube.errors import DEPENDENCY
from queue_manager.adapters.kube.manifests import CaVolume, JobTemplate
from queue_manager.adapters.kube.rate_limit import RateLimitedTransport, TokenBucket
from queue_manager.domain.errors import DependencyUnavailable, Misconfigured
from queue_manager.settings import Settings

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
FIELD_MANAGER = "queue-manager"


def _resources(cpu: str, memory: str) -> dict[str, str]:
    """An empty value means none of that resource."""
    return {k: v.strip() for k, v in (("cpu", cpu), ("memory", memory)) if v.strip()}


def ca_from_settings(settings: Settings) -> CaVolume | None:
    """The Kafka CA volume K8S_CA_SECRET or K8S_CA_CONFIGMAP names (settings refuse both)."""
    where = {"key": settings.k8s_ca_key, "mount_path": settings.k8s_ca_mount_path}
    if settings.k8s_ca_secret:
        return CaVolume("secret", settings.k8s_ca_secret, **where)
    if settings.k8s_ca_configmap:
        return CaVolume("configmap", settings.k8s_ca_configmap, **where)
    return None


def template_from_settings(settings: Settings) -> JobTemplate:
    return JobTemplate(
        ttl_seconds_after_finished=settings.k8s_job_ttl_seconds,
        active_deadline_seconds=settings.k8s_job_active_deadline_seconds,
        requests=_resources(settings.k8s_job_cpu_request, settings.k8s_job_memory_request),
        limits=_resources(settings.k8s_job_cpu_limit, settings.k8s_job_memory_limit),
        node_selector=dict(settings.k8s_node_selector),
        service_account_name=settings.k8s_job_service_account,
        image_pull_policy=settings.k8s_image_pull_policy,
        ca=ca_from_settings(settings),
    )


def running_in_a_pod() -> bool:
    """What the kubelet gives every Pod: the service's address and a ServiceAccount token."""
    return (
        bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
        and (Path(SERVICE_ACCOUNT_DIR) / "token").is_file()
    )


def _load_config(
    kubeconfig: Path | None, in_cluster: bool | None, service_account_dir: Path
) -> KubeConfig:
    if in_cluster is None:  # an explicit kubeconfig wins, else the Pod's ServiceAccount
        in_cluster = kubeconfig is None and bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if in_cluster:
        return KubeConfig.from_service_account(service_account_dir)
    if kubeconfig is not None:
        return KubeConfig.from_file(kubeconfig)
    return KubeConfig.from_env()


def _usable_config(
    kubeconfig: Path | None, in_cluster: bool | None, service_account_dir: Path
) -> tuple[Any, ssl.SSLContext]:
    """The configuration `connect` uses and its TLS context; DependencyUnavailable when there
    is none to use."""
    try:
        config = _load_config(kubeconfig, in_cluster, service_account_dir).get()
        if config is None or config.user is None:
            raise ConfigError("the kubeconfig has no current context or user")
        verify: ssl.SSLContext = verify_cluster(config.cluster, config.user, config.abs_file)
    except (ConfigError, OSError, KeyError, ValueError, ssl.SSLError, yaml.YAMLError) as exc:
        said = f"no {exc} in it" if isinstance(exc, KeyError) else str(exc)
        detail = " ".join(said.split())  # YAML errors span lines
        raise DependencyUnavailable(
            DEPENDENCY, f"no usable Kubernetes configuration: {detail}"
        ) from exc
    return config, verify


def check_config(
    kubeconfig: Path | None, in_cluster: bool | None, service_account_dir: Path
) -> None:
    """At start-up, a configuration that is missing or unusable is the operator's to fix:
    Misconfigured, naming where it was looked for, rather than a service retrying forever."""
    try:
        _usable_config(kubeconfig, in_cluster, service_account_dir)
    except DependencyUnavailable as exc:
        found = exc.detail.removeprefix("no usable Kubernetes configuration: ")
        if kubeconfig is not None:
            where = f"KUBECONFIG: must name a kubeconfig file with a current context ({found})"
        elif in_cluster:
            where = f"the Pod's ServiceAccount ({service_account_dir}) is not usable ({found})"
        else:
            where = (
                "LAUNCHER_BACKEND=kubernetes: set KUBECONFIG, or run in a Pod with a "
                f"ServiceAccount ({found})"
            )
        raise Misconfigured(where) from None


def connect(
    *,
    kubeconfig: Path | None,
    in_cluster: bool | None,
    service_account_dir: Path,
    namespace: str,
    bucket: TokenBucket,
    request_timeout: float,
) -> tuple[AsyncClient, str]:
    """A client whose every request passes `bucket`, and the server it talks to."""
    config, verify = _usable_config(kubeconfig, in_cluster, service_account_dir)
    # A transport of our own so that every request passes the rate limiter; it carries the
    # TLS settings lightkube would otherwise give its default transport.
    transport = RateLimitedTransport(httpx2.AsyncHTTPTransport(verify=verify), bucket)
    client = AsyncClient(
        config,
        namespace=namespace,
        timeout=httpx2.Timeout(request_timeout),
        field_manager=FIELD_MANAGER,
        transport=transport,
    )
    return client, str(config.cluster.server)
