"""Prometheus metrics, served to tokens with the ``metrics`` or ``admin`` scope.

The database part (counts and histograms over the executions and triggers tables) is read at most
once per ``WOOW_METRICS_CACHE_SECONDS`` by one API replica and shared with the others through
Redis, so scrapes (however many, however often) never scan the tables themselves; the queue depth
is read from Redis on every scrape.

- ``woow_executions{status}``: executions in the history, by status
- ``woow_execution_duration_seconds``: histogram of finished executions' durations
- ``woow_fire_lateness_seconds``: histogram of scheduled fires' dispatch lateness (enqueued - nominal;
  0 for a fire beat prepared ahead)
- ``woow_queue_depth{queue}``: messages waiting in the Celery queue (Redis broker)
- ``woow_triggers{state}``: triggers by state
- ``woow_store_up{store}``: 1 when the store answered this scrape
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement

from ..db.models import Execution, Trigger
from ..enums import ExecutionStatus, TriggerState
from ..keys import Keys
from ..metrics import BY_NAME

log = logging.getLogger("woow.api")

DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)


class WoowCollector(Collector):
    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("woow_store_up", _doc("woow_store_up"), labels=["store"])
        try:
            families = list(self._database_families())
            up.add_metric(["database"], 1)
        except Exception as exc:
            log.warning("metrics: database unreadable: %s", exc)
            families = []
            up.add_metric(["database"], 0)
        families.append(self._queue_depth(up))
        yield up
        yield from families

    # -- PostgreSQL -----------------------------------------------------------------------------

    def _database_families(self) -> Iterator[Metric]:
        snap = self._snapshot()
        by_status: dict[str, int] = snap["by_status"]
        by_state: dict[str, int] = snap["by_state"]
        durations = (snap["durations"][0], snap["durations"][1], snap["durations"][2])
        lateness = (snap["lateness"][0], snap["lateness"][1], snap["lateness"][2])
        executions = GaugeMetricFamily("woow_executions", _doc("woow_executions"), labels=["status"])
        for status in ExecutionStatus:
            executions.add_metric([status.value], float(by_status.get(status.value, 0)))
        yield executions
        triggers = GaugeMetricFamily("woow_triggers", _doc("woow_triggers"), labels=["state"])
        for state in TriggerState:
            if state != TriggerState.BLOCKED:
                triggers.add_metric([state.value], float(by_state.get(state.value, 0)))
        yield triggers
        yield _histogram("woow_execution_duration_seconds", DURATION_BUCKETS, durations)
        yield _histogram("woow_fire_lateness_seconds", LATENESS_BUCKETS, lateness)

    def _snapshot(self) -> dict[str, Any]:
        """The database figures: from the shared cache while fresh, else read (by one replica)."""
        ttl = float(self.state.settings.metrics_cache_seconds)
        keys = Keys(self.state.settings.key_prefix)
        client: redis.Redis = self.state.redis
        cached: dict[str, Any] | None = None
        if ttl > 0:
            try:
                raw = client.get(keys.metrics_cache)
                loaded: Any = json.loads(raw) if raw else None
                cached = loaded if isinstance(loaded, dict) else None
                if cached is not None and time.time() - float(cached["at"]) < ttl:
                    return cached
                if cached is not None and not client.set(keys.metrics_lock, "1", nx=True, px=int(ttl * 1000)):
                    return cached  # another replica is reading the tables; the last figures stand
            except (redis.RedisError, ValueError, KeyError, TypeError) as exc:
                log.warning("metrics: no cached figures (%s); reading the database", exc)
        snap = self._read_database()
        if ttl > 0:
            try:
                client.set(keys.metrics_cache, json.dumps(snap))
            except redis.RedisError as exc:
                log.warning("metrics: cannot cache the figures: %s", exc)
        return snap

    def _read_database(self) -> dict[str, Any]:
        db = self.state.db
        with db.session() as s:
            by_status = s.execute(select(Execution.status, func.count()).group_by(Execution.status)).all()
            by_state = s.execute(select(Trigger.state, func.count()).group_by(Trigger.state)).all()
            durations = _histogram_row(
                s,
                Execution.duration_ms / 1000.0,
                list(DURATION_BUCKETS),
                Execution.duration_ms.is_not(None),
            )
            lateness = _histogram_row(
                s,
                _seconds_between(db.dialect, Execution.enqueued_at, Execution.scheduled_for),
                list(LATENESS_BUCKETS),
                Execution.trigger_id.is_not(None),
                Execution.enqueued_at.is_not(None),
                Execution.scheduled_for.is_not(None),
            )
        return {
            "at": time.time(),
            "by_status": {str(getattr(k, "value", k)): int(v) for k, v in by_status},
            "by_state": {str(getattr(k, "value", k)): int(v) for k, v in by_state},
            "durations": list(durations),
            "lateness": list(lateness),
        }

    # -- Redis ----------------------------------------------------------------------------------
    def _queue_depth(self, up: GaugeMetricFamily) -> Metric:
        settings = self.state.settings
        depth = GaugeMetricFamily("woow_queue_depth", _doc("woow_queue_depth"), labels=["queue"])
        try:
            client: redis.Redis = self.state.redis
            client.ping()
            up.add_metric(["redis"], 1)
            if settings.effective_broker_url == settings.redis_url:
                key = Keys(settings.key_prefix).broker_queue(settings.queue)
                depth.add_metric([settings.queue], float(client.llen(key)))
        except redis.RedisError as exc:
            log.warning("metrics: redis unreadable: %s", exc)
            up.add_metric(["redis"], 0)
        return depth


def _seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _histogram_row(s: Any, value: Any, buckets: Sequence[float], *where: Any) -> tuple[list[int], int, float]:
    columns = [func.count().filter(value <= b) for b in buckets]
    row = s.execute(select(*columns, func.count(), func.coalesce(func.sum(value), 0.0)).where(*where)).one()
    return [int(c or 0) for c in row[: len(buckets)]], int(row[len(buckets)] or 0), float(row[-1] or 0.0)


def _histogram(name: str, buckets: Sequence[float], data: tuple[list[int], int, float]) -> Metric:
    counts, total, total_sum = data
    family = HistogramMetricFamily(name, _doc(name))
    pairs = [(_le(b), float(c)) for b, c in zip(buckets, counts, strict=True)]
    pairs.append(("+Inf", float(total)))
    family.add_metric([], pairs, sum_value=total_sum)
    return family


def _le(bound: float) -> str:
    return repr(float(bound))


def _doc(name: str) -> str:
    """The family's help text: the one in :data:`woow_scheduler.metrics.METRICS` (documented in
    docs/operations.md)."""
    return BY_NAME[name].help
