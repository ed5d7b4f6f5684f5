"""The one rule for "is the beat alive", shared by ``woow status`` and ``/readyz``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from woow_scheduler.scheduler import health
from woow_scheduler.settings import load_settings

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def state(age: float, lock_timeout: float | None = 30.0) -> dict[str, str]:
    out = {"last_tick": (NOW - timedelta(seconds=age)).isoformat()}
    if lock_timeout is not None:
        out["lock_timeout"] = str(lock_timeout)
    return out


def test_a_tick_is_stale_after_the_lock_lifetime_the_beat_reported() -> None:
    s = load_settings(beat_lock_timeout=60.0, beat_max_loop_interval=5.0)
    assert health.tick_stale_after(s, state(0, 30.0)) == 30.0
    assert health.tick_stale_after(s, state(0, None)) == 60.0  # not reported: the setting
    assert health.tick_stale_after(s, state(0, 1.0)) == health.MIN_STALE_AFTER
    assert health.beat_is_live(s, state(29.0), lock_ttl_ms=5000, now=NOW)
    assert not health.beat_is_live(s, state(31.0), lock_ttl_ms=5000, now=NOW)


def test_a_fresh_tick_without_the_lock_or_without_any_tick_is_not_alive() -> None:
    s = load_settings()
    assert not health.beat_is_live(s, state(1.0), lock_ttl_ms=-2, now=NOW)
    assert not health.beat_is_live(s, state(1.0), lock_ttl_ms=None, now=NOW)
    assert not health.beat_is_live(s, {}, lock_ttl_ms=5000, now=NOW)
    assert health.tick_age({}, NOW) is None and health.tick_age(state(2.5), NOW) == 2.5


def test_heartbeats_are_fresh_for_three_intervals() -> None:
    s = load_settings(heartbeat_interval=10.0)
    assert health.heartbeat_fresh_since(s, NOW) == NOW - timedelta(seconds=30)


def test_status_and_readyz_both_use_the_rule() -> None:
    from pathlib import Path

    import woow_scheduler

    root = Path(woow_scheduler.__file__).parent
    for user in ("cli/ops.py", "api/health.py"):
        text = (root / user).read_text(encoding="utf-8")
        assert "scheduler.health import" in text and "heartbeat_interval" not in text, user
