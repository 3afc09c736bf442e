"""Per-queue tokens for embedded workers reporting over HTTP.

A token is an HMAC of the queue id, so every replica sharing the secret can check it and a
token leaked from one queue's worker cannot touch another queue.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from queue_manager.api.secret_file import file_secret


class WorkerTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> WorkerTokens:
        """The secret is kept beside the data so workers outlive a restart of the service."""
        return cls(file_secret(path, lambda: secrets.token_bytes(32)))

    def token(self, queue_id: str) -> str:
        return hmac.new(self._secret, queue_id.encode(), hashlib.sha256).hexdigest()

    def check(self, queue_id: str, token: str) -> bool:
        return hmac.compare_digest(self.token(queue_id), token)
