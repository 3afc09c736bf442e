"""Worker SDK: what a StreamForge job imports to read its environment, report its progress to
queue-manager and learn it must stop (docs/worker-protocol.md).

    async with Worker.from_env() as worker:
        await worker.started()
        ...
        await worker.loading(records_written=n, last_loaded_timestamp=ts)
        if worker.stop_requested.is_set():
            await worker.interrupted()
            return
        await worker.finished(records_written=n)
"""

from queue_manager.worker.env import WorkerEnv, WorkerEnvError
from queue_manager.worker.sdk import Outcome, Worker, make_transport
from queue_manager.worker.transport import Command, DeliveryError, HttpTransport, Transport

__all__ = [
    "Command",
    "DeliveryError",
    "HttpTransport",
    "Outcome",
    "Transport",
    "Worker",
    "WorkerEnv",
    "WorkerEnvError",
    "make_transport",
]
