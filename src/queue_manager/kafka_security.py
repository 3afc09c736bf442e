"""How every Kafka client of ours connects (docs/operations.md), shared by the service and the
worker SDK.

With a user: SASL_SSL with SCRAM-SHA-512 and the platform CA; without: PLAINTEXT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiokafka.helpers import create_ssl_context


def client_security(user: str | None, password: str | None, ca_path: Path | None) -> dict[str, Any]:
    if not user:
        return {"security_protocol": "PLAINTEXT"}
    return {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": user,
        "sasl_plain_password": password or "",
        "ssl_context": create_ssl_context(cafile=str(ca_path) if ca_path else None),
    }
