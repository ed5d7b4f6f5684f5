"""Log records as one JSON object per line (``WOOW_LOG_FORMAT=json``), for log shippers.

Fields: ``ts``, ``level``, ``logger``, ``message`` and every structured field a record carries
(``workflow``, ``workflow_id``, ``trigger_id``, ``execution_id``, ``scheduled_for``, ...).
Exceptions go into ``exc``.  Installed on Celery's loggers by the app factory; text stays the default.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def use_json(logger: logging.Logger) -> None:
    """Give every handler of ``logger`` (and of the root logger) the JSON formatter."""
    formatter = JsonFormatter()
    for lg in {logger, logging.getLogger()}:
        for handler in lg.handlers:
            handler.setFormatter(formatter)


def install(app: Any, log_format: str) -> None:
    """Hook the formatter into a Celery app's logging set-up (worker and beat)."""
    if log_format != "json":
        return
    from celery import signals

    def _setup(logger: logging.Logger, **_: Any) -> None:
        use_json(logger)

    # weak=False: the closure must outlive this call; dispatch_uid: one hook per process
    signals.after_setup_logger.connect(_setup, weak=False, dispatch_uid="woow-json-logs")
    signals.after_setup_task_logger.connect(_setup, weak=False, dispatch_uid="woow-json-task-logs")
