"""Storage in the relational database: models, engine/session factory, Alembic migrations."""

from .models import ApiToken, Base, Execution, SchedulerInstance, Trigger, Workflow
from .session import Database

__all__ = ["ApiToken", "Base", "Database", "Execution", "SchedulerInstance", "Trigger", "Workflow"]
