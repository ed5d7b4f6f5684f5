"""Storage in the relational database: models, engine/session factory, Alembic migrations."""

from .models import ApiToken, Base, CalendarRow, Execution, SchedulerInstance, Trigger, Workflow
from .session import Database

__all__ = ["ApiToken", "Base", "CalendarRow", "Database", "Execution", "SchedulerInstance", "Trigger", "Workflow"]
