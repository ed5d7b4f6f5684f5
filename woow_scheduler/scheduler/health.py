"""When a beat counts as alive: the one rule behind ``woow status`` and the API's ``/readyz``.

The active beat writes a state hash (``Keys.beat_state``: ``last_tick``, ``lock_timeout``, ...)
every tick while it holds the beat lock, and a heartbeat row in ``scheduler_instances`` every
``heartbeat_interval``.  A tick older than the lock lifetime the beat runs with means its lock has
expired or is about to (the beat extends it on every tick and inside long ticks), so a standby may
take over: that beat is stale.  A heartbeat row older than three intervals is a dead process.

Pure functions of the settings, what was read and ``now``: no Redis, SQL or Celery here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from ..settings import Settings

#: Never call a beat stale sooner than this, whatever its lock lifetime (clock skew, a slow read).
MIN_STALE_AFTER = 5.0

#: Missed heartbeats after which a beat or worker row counts as gone.
HEARTBEATS_MISSED = 3


def tick_stale_after(settings: Settings, beat_state: Mapping[str, str] | None = None) -> float:
    """Seconds after which the active beat's last tick is stale: the lock lifetime it reported in
    its state hash (the settings' ``beat_lock_timeout`` when it reported none), at least 5 s."""
    reported = (beat_state or {}).get("lock_timeout")
    return max(float(reported or settings.beat_lock_timeout), MIN_STALE_AFTER)


def tick_age(beat_state: Mapping[str, str], now: datetime) -> float | None:
    """Seconds since the active beat's last tick (None: it never reported one)."""
    last = beat_state.get("last_tick")
    return (now - datetime.fromisoformat(last)).total_seconds() if last else None


def beat_is_live(settings: Settings, beat_state: Mapping[str, str], *, lock_ttl_ms: int | None, now: datetime) -> bool:
    """A tick younger than :func:`tick_stale_after` of a beat whose lock is still held (positive TTL)."""
    age = tick_age(beat_state, now)
    held = lock_ttl_ms is not None and lock_ttl_ms > 0
    return held and age is not None and age <= tick_stale_after(settings, beat_state)


def heartbeat_fresh_since(settings: Settings, now: datetime) -> datetime:
    """Heartbeat rows at or after this instant belong to live processes."""
    return now - timedelta(seconds=HEARTBEATS_MISSED * settings.heartbeat_interval)
