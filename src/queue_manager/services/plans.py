"""A start request checked in one pass (every bad field in one 422) and its plan previewed
(`POST /queues/plan`): the same checks, nothing stored or launched."""

from __future__ import annotations

import uuid
from typing import Any

from queue_manager.domain import validation
from queue_manager.domain.errors import InvalidRequest
from queue_manager.domain.plan_preview import FieldError, Plan, preview
from queue_manager.services.catalog import CatalogService
from queue_manager.services.queues import QueueService


class PlanService:
    """Uses the settings of `queues` (ALLOWED_IMAGES, LOADER_TYPES, RETRY_DEFAULTS), so a plan
    is the queue a start would make."""

    def __init__(self, queues: QueueService, catalog: CatalogService) -> None:
        self.queues = queues
        self.catalog = catalog

    async def _check(self, raw: Any) -> tuple[validation.Checked, list[dict[str, str]]]:
        checked = validation.check(
            raw,
            str(uuid.uuid4()),
            allowed_images=self.queues.allowed_images,
            loader_types=self.queues.loader_types,
            retry_defaults=self.queues.retry_defaults,
        )
        errors = list(checked.errors)
        if checked.inputs is not None:
            errors += await self.catalog.input_errors(checked.inputs)
        return checked, errors

    async def check_start(self, raw: Any) -> None:
        """Raise one InvalidRequest naming every bad field of a start body."""
        _, errors = await self._check(raw)
        if errors:
            raise InvalidRequest(errors)

    async def plan(self, raw: Any) -> Plan:
        """The plan of a start body and all its errors; steps only when it is well-formed."""
        checked, errors = await self._check(raw)
        if checked.queue is None:
            return Plan(valid=False, errors=[FieldError(**e) for e in errors])
        return preview(checked.queue, checked.steps_in, errors)
