"""Credentials of embedded workers reporting over HTTP (docs/security.md#worker-credentials).

A worker's token is an HMAC of its step run's producer id (`TELEMETRY_PRODUCER_ID`, which names
the queue, the step's index and target, and the run), so every replica sharing the secret can
check it, and a token speaks for that one run of that one step: not for another step of its
queue, not for another queue, not for the step's next run. That the run is still open is the
telemetry endpoint's business (services/workers.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from queue_manager.api.secret_file import file_secret

#: keeps a worker token from ever equalling another HMAC made with the same secret
_PURPOSE = b"queue-manager worker run\0"


class WorkerTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> WorkerTokens:
        """The secret is kept beside the data so workers outlive a restart of the service."""
        return cls(file_secret(path, lambda: secrets.token_bytes(32)))

    def token(self, producer: str) -> str:
        """The credential of the worker of one step run, named by its producer id."""
        return hmac.new(self._secret, _PURPOSE + producer.encode(), hashlib.sha256).hexdigest()

    def check(self, producer: str, token: str) -> bool:
        return hmac.compare_digest(self.token(producer), token)
