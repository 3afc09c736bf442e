"""Helpers shared by the KubeLauncher tests (tests/kube/test_launcher*.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter

from queue_manager.adapters.kube import KubeLauncher
from queue_manager.app import job_config
from queue_manager.domain import planner
from queue_manager.domain.models import QueueState
from queue_manager.domain.requests import StartRequest
from queue_manager.ports import JobSpec, JobStatus
from queue_manager.services.job_specs import job_spec
from queue_manager.settings import Settings
from tests.support.job_watcher import Watcher as Watcher
from tests.support.kube_apiserver import KubeAPIServer

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "queue-manager"
HISTORICAL = REPO / "examples" / "historical.json"

KAFKA_PASSWORD = "kafka-pass-do-not-leak"
ARANGO_PASSWORD = "arango-pass-do-not-leak"


def settings(**overrides: Any) -> Settings:
    """Production-like settings: Kafka and Arango with credentials (the passwords must never
    reach a Job)."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": "kafka:9092",
        "kafka_user": "qm",
        "kafka_password": KAFKA_PASSWORD,
        "arango_url": "http://arangodb:8529",
        "arango_password": ARANGO_PASSWORD,
        "launcher_backend": "kubernetes",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def historical_queue(queue_id: str) -> QueueState:
    import json

    body = json.loads(HISTORICAL.read_text())
    return planner.plan(TypeAdapter(StartRequest).validate_python(body), queue_id)


def specs_for(queue: QueueState, config: Settings | None = None) -> list[JobSpec]:
    jobs = job_config(config or settings())
    return [job_spec(queue, step, jobs) for step in queue.steps]


def simple_spec(name: str, queue_id: str = "q-test", index: int = 0, retries: int = 0) -> JobSpec:
    return JobSpec(
        name=name,
        queue_id=queue_id,
        step_index=index,
        target="loader-producer",
        image="example.invalid/loader:1",
        env={"QUEUE_ID": queue_id, "SYMBOL": "BTCUSDT"},
        secret_env={"KAFKA_PASSWORD": ("kafka-credentials", "password")},
        max_retries=retries,
    )


def make_launcher(
    server: KubeAPIServer, namespace: str, kubeconfig: Path | None = None, **kwargs: Any
) -> KubeLauncher:
    kwargs.setdefault("qps", 0)  # unlimited unless a test is about the limiter
    return KubeLauncher(
        namespace, kubeconfig=kubeconfig or server.kubeconfig_path, in_cluster=False, **kwargs
    )


def apiserver_requests(server: KubeAPIServer, verb: str, resource: str = "jobs") -> int:
    """How many `verb` requests for `resource` (not a subresource, not a dry run) the API
    server has answered, by its own counter."""
    total = 0
    for line in server.request("GET", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        if (
            f'verb="{verb}"' in labels
            and f'resource="{resource}"' in labels
            and 'subresource=""' in labels
            and 'dry_run=""' in labels
        ):
            total += int(float(value))
    return total


# -- the chart, rendered without helm -------------------------------------------------------------

_TAG = re.compile(r"(?P<pre>[ \t]*\n?[ \t]*)?\{\{(?P<l>-)?\s*(?P<expr>.*?)\s*(?P<r>-)?\}\}")


def _lookup(path: str, context: dict[str, Any]) -> Any:
    value: Any = context
    for part in path.lstrip(".").split("."):
        value = value[part]
    return value


def _truthy(words: list[str], context: dict[str, Any]) -> bool:
    """`.Values.x` or `or .Values.x .Values.y`, true as Helm has it (not empty, zero or false)."""
    if len(words) >= 3 and words[0] == "or" and all(w.startswith(".") for w in words[1:]):
        return any(_lookup(word, context) for word in words[1:])
    if len(words) == 1 and words[0].startswith("."):
        return bool(_lookup(words[0], context))
    raise ValueError(f"unsupported condition: {' '.join(words)!r}")


def _expression(expr: str, context: dict[str, Any]) -> str:
    parts = [p.strip() for p in expr.split("|")]
    head = parts[0].split()
    if len(head) == 2 and head[0] == "toYaml":
        value: Any = _lookup(head[1], context)
        out = yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")
    elif len(head) == 1 and head[0].startswith("."):
        value = _lookup(head[0], context)
        out = str(value)
    else:
        raise ValueError(f"unsupported template expression: {expr!r}")
    for fn in parts[1:]:
        words = fn.split()
        if words == ["quote"]:
            out = '"' + out.replace('"', '\\"') + '"'
        elif len(words) == 2 and words[0] == "nindent":
            pad = " " * int(words[1])
            out = "\n" + "\n".join(pad + line if line else line for line in out.splitlines())
        else:
            raise ValueError(f"unsupported template function: {fn!r}")
    return out


def render_template(text: str, context: dict[str, Any]) -> str:
    """Render the small subset of Helm's template language the chart uses: `.Values.a.b`,
    `.Release.*`, `.Chart.*`, `| quote`, `toYaml X | nindent N` and `if`/`else if`/`else`/`end`
    on a value or an `or` of values, with `{{-` trimming. Anything else fails loudly, so a
    template that outgrows the subset is noticed."""
    out: list[str] = []
    #: per open `if`: whether the text around it is kept, and whether one branch was taken
    blocks: list[tuple[bool, bool]] = []
    keep, last = True, 0
    for match in _TAG.finditer(text):
        if keep:
            out.append(text[last : match.start()])
            if not match.group("l"):
                out.append(match.group("pre") or "")
        last = match.end()
        words = match.group("expr").split()
        if words[:1] == ["if"]:
            blocks.append((keep, keep and _truthy(words[1:], context)))
            keep = blocks[-1][1]
        elif words[:2] == ["else", "if"] or words == ["else"]:
            outer, taken = blocks[-1]
            keep = outer and not taken and (words == ["else"] or _truthy(words[2:], context))
            blocks[-1] = (outer, taken or keep)
        elif words == ["end"]:
            keep, _ = blocks.pop()
        elif keep:
            out.append(_expression(match.group("expr"), context))
    if blocks:
        raise ValueError(f"{len(blocks)} `if` without `end`")
    out.append(text[last:])
    return "".join(out)


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def render_chart(
    release: str, namespace: str, values: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """file name -> the manifest it renders to, with `values` over values.yaml (as `--set`)."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    context = {
        "Values": _merged(defaults, values or {}),
        "Release": {"Name": release, "Namespace": namespace, "Service": "Helm"},
        "Chart": {
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        },
    }
    rendered = {}
    for path in sorted((CHART / "templates").glob("*.yaml")):
        rendered[path.name] = yaml.safe_load(render_template(path.read_text(), context))
    return rendered


async def gather_list(launcher: KubeLauncher) -> dict[str, JobStatus]:
    return {job.name: job for job in await launcher.list_jobs()}


async def aiter_list(source: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in source]
