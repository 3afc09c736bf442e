"""Per-queue tokens for embedded workers reporting over HTTP.

A token is an HMAC of the queue id, so every replica sharing the secret can check it and a
token leaked from one queue's worker cannot touch another queue.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path


class WorkerTokens:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_file(cls, path: Path) -> WorkerTokens:
        """The secret is kept beside the data so workers outlive a restart of the service."""
        if path.exists():
            return cls(path.read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        path.write_bytes(secret)
        path.chmod(0o600)
        return cls(secret)

    def token(self, queue_id: str) -> str:
        return hmac.new(self._secret, queue_id.encode(), hashlib.sha256).hexdigest()

    def check(self, queue_id: str, token: str) -> bool:
        return hmac.compare_digest(self.token(queue_id), token)
