"""Quartz-compatible cron expressions (and Unix 5-field cron), pure and fast.

from woow_scheduler.cron import CronExpression
expr = CronExpression("0 0 9 ? * MON-FRI", timezone="Europe/Berlin")
expr.next_after(datetime(2026, 1, 1, tzinfo=UTC))
"""

from woow_scheduler.cron.expression import CronExpression
from woow_scheduler.cron.fields import CronFields, Dialect, DstPolicy

__all__ = ["CronExpression", "CronFields", "Dialect", "DstPolicy"]
