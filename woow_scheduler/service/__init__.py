"""Use cases shared by the CLI and the HTTP API, split by subject.

Every write is one transaction: invalid input raises a typed error from ``errors.py`` before
anything is written.  After a committed trigger change the live schedule is updated at once
through the :class:`~woow_scheduler.interfaces.ScheduleMirror` ("write-through"); if Redis is
down the change stays committed and the periodic reconcile repairs the schedule.

- ``base``: the service's state, guarded sessions, write-through, lookups by name/id/prefix;
- ``validation``: names, workflow bodies, stored specs, the one pydantic-error formatter;
- ``workflows``, ``triggers``, ``history``, ``calendars``: the use cases of each subject;
- ``apply``: workflow files (``woow workflow apply``) and their one-transaction apply.

Importing this package loads neither Celery nor the worker.
"""

from __future__ import annotations

from .apply import ApplyOps
from .calendars import CalendarOps
from .history import HistoryOps
from .validation import NAME_RE, VISIBILITY_MARGIN, WorkflowInput, pydantic_error, spec_from_stored

__all__ = ["NAME_RE", "VISIBILITY_MARGIN", "Service", "WorkflowInput", "pydantic_error", "spec_from_stored"]


class Service(ApplyOps, HistoryOps, CalendarOps):
    """The application's use cases.  One instance per process; cheap to build."""
