"""Errors that carry a meaning for the client. `api/errors.py` maps each to an HTTP answer."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service means to tell a client about."""

    def __init__(self, message: str, *, data: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class QueueNotFound(DomainError):
    def __init__(self, queue_id: str) -> None:
        super().__init__(f"Queue {queue_id} not found", data={"queue_id": queue_id})


class Conflict(DomainError):
    """The request is valid but contradicts the queue's current state."""


class InvalidRequest(DomainError):
    """Input that passed the schema but breaks a rule (a cycle, a missing parameter...).

    `errors` uses the same item shape as schema errors: {"field", "message"}.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("Invalid request", data={"errors": errors})
        self.errors = errors


class DependencyUnavailable(DomainError):
    """An external system (store, bus, launcher) cannot be reached right now."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(f"{dependency} unavailable: {detail}", data={"dependency": dependency})
        self.dependency = dependency
        self.detail = detail


class Misconfigured(Exception):
    """A setting the operator must fix (bad credentials, unknown database): start-up fails with
    this one line instead of retrying forever."""


class LaunchFailed(DomainError):
    """The launcher refused a job for good (forbidden, invalid manifest...): the step fails."""


class Unauthenticated(DomainError):
    """No credential, or one that is not valid (unknown, expired, revoked, badly signed)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermissionDenied(DomainError):
    """A valid principal whose role does not allow the action."""

    def __init__(self, needed: str, action: str) -> None:
        super().__init__(f"{needed} role required to {action}", data={"required_role": needed})
        self.needed = needed
        self.action = action


class TokenNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Token {name} not found", data={"name": name})


class LogsUnavailable(DomainError):
    """A step's log cannot be served (no job yet, its job and pod are gone...): says why."""


class ScheduleNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Schedule {name} not found", data={"name": name})


class CollectionNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Collection {name} not in the catalog", data={"name": name})


class ExpectedGapNotFound(DomainError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Expected gap {name} not found", data={"name": name})
