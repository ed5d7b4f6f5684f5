"""Every extension seam in one place.

- :class:`TaskStrategy` (``woow_scheduler.engine.base``): one kind of workflow step.
- :class:`ScheduleMirror`: what the service layer calls after each committed trigger change so the
  live schedule (RedBeat in Redis) follows PostgreSQL at once ("write-through").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from .engine.base import StepContext, StrategyConfig, TaskStrategy


class ScheduleMirror(Protocol):
    def triggers_changed(self, trigger_ids: Sequence[uuid.UUID]) -> None:
        """Bring the live entries of these triggers in line with the database.

        Called after the commit.  A trigger that no longer exists, is paused or complete loses its
        entry; any other gets its entry created or updated without resetting its last fire time.
        May raise: the caller logs the error and relies on the periodic reconcile.
        """


__all__ = ["ScheduleMirror", "StepContext", "StrategyConfig", "TaskStrategy"]
