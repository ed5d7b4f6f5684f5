"""A failing beat maintenance step is logged once with its traceback, then once every 30 s, then
once when it recovers -- not a traceback every half second through a PostgreSQL outage."""

from __future__ import annotations

import logging

import pytest

from woow_scheduler.scheduler.beat import _FailureStreak


def test_a_failure_streak_logs_first_then_every_30s_then_recovery(caplog: pytest.LogCaptureFixture) -> None:
    streak = _FailureStreak()
    caplog.set_level(logging.INFO, logger="woow")
    exc = OSError("connection refused\nDETAIL: more")
    for i in range(120):  # a minute of failures, one every 0.5 s
        streak.failed(exc, 100.0 + i * 0.5)
    streak.ok(160.0)
    lines = [r for r in caplog.records if "maintenance" in r.getMessage()]
    messages = [r.getMessage() for r in lines]
    assert messages[0] == "beat: maintenance step failed: connection refused\nDETAIL: more"
    assert lines[0].exc_info is not None
    assert messages[1] == "beat: maintenance still failing (61 times in 30 s): connection refused"
    assert all(r.exc_info is None for r in lines[1:])
    assert messages[-1] == "beat: maintenance recovered after 120 failed steps in 60 s"
    assert len(messages) == 3
    streak.ok(161.0)  # nothing more to say
    streak.failed(exc, 170.0)  # a new streak starts with its traceback again
    assert len([r for r in caplog.records if "maintenance" in r.getMessage()]) == 4
