"""Embedded launcher: each job is a local worker subprocess (docs/operations.md).

It mimics a Kubernetes Job closely enough that the services cannot tell the difference
(tests/launcher runs one contract suite on both): names are idempotent, a failed process is
restarted up to `max_retries` times (backoffLimit), and the job records live on disk, so a
restarted service adopts the workers still running and learns how the others ended.

One adapter in three modules, none of which another adapter imports:

* `launcher`: `LocalLauncher`, the `Launcher` port: starting, reaping, restarting, adopting;
* `records`: the jobs directory: one record per job, the worker's exit file and log;
* `procfs`: what /proc says about a process that may not be our child.
"""

from queue_manager.adapters.local.launcher import LocalLauncher

__all__ = ["LocalLauncher"]
