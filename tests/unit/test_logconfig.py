from __future__ import annotations

import json
import logging

from woow_scheduler.logconfig import JsonFormatter


def test_json_lines_carry_the_structured_fields() -> None:
    record = logging.makeLogRecord({
        "name": "woow.worker", "levelno": logging.INFO, "levelname": "INFO", "msg": "run %s",
        "args": ("ok",), "workflow": "report", "execution_id": "e1", "scheduled_for": "2026-01-01T00:00:00+00:00",
    })
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "run ok" and data["level"] == "INFO" and data["logger"] == "woow.worker"
    assert data["workflow"] == "report" and data["execution_id"] == "e1"
    assert data["scheduled_for"].startswith("2026-01-01")
