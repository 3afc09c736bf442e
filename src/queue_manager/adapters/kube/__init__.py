"""Production launcher: each step is a Kubernetes Job (docs/worker-protocol.md, docs/operations.md).

Client library: `lightkube` (`AsyncClient`). Its resources are typed models (the manifest is
checked by mypy, not a free-form dict), it is small (httpx2 + PyYAML, no generated OpenAPI
client), and it is async-native, so list/watch/create run on the service's event loop without
threads. `kubernetes_asyncio` would have given a far larger generated client and untyped dicts.

One adapter in several modules, none of which another adapter imports:

* `launcher`: `KubeLauncher`, the `Launcher` port;
* `manifests`: the Job built for a step, and a Job read back as a `JobStatus`;
* `pods`: what a Job's pods say that the Job does not (image pull errors, unschedulable, lost);
* `config`: settings to Job template, and which cluster credentials to use;
* `rate_limit`: the client-side QPS/burst limit every request passes;
* `watch`: list, then watch, re-listing on 410 Gone, errors and silence;
* `errors`: API answers and transport errors as the domain's errors.
"""

from queue_manager.adapters.kube.launcher import KubeLauncher

__all__ = ["KubeLauncher"]
