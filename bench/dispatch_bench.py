"""N triggers due in the same second: time until every task is published, ours vs plain RedBeat
with N interval entries (same broker, same app configuration, measured in the same run).

    python -m bench.dispatch_bench [--quick] [--json]

Both schedulers run in this process; a fire counts as published when it is in the broker: for
RedBeat when its ``send_task`` returns (wrapped), for ours when the batch holding it was flushed.
Lateness of a fire = publish time - scheduled_for (ours carries it; for RedBeat the due second).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Celery
from celery.schedules import schedule as interval
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry

from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import named, require
from ._sched_env import PublishClock, bench_env, bench_main, insert_triggers, percentile, queue_redbeat_entry

FULL = 10_000
QUICK = 2_000


class _BenchScheduler(PublishClock):
    run_maintenance = False  # dispatch only, as the baseline


def _record(app: Celery) -> list[tuple[float, dict[str, Any]]]:
    sent: list[tuple[float, dict[str, Any]]] = []
    real: Callable[..., Any] = app.send_task

    def send_task(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        sent.append((time.time(), kwargs.get("kwargs") or {}))
        return result

    app.send_task = send_task
    return sent


def _drive(tick: Callable[[], float], sent: list[Any], n: int, due: float, timeout: float) -> None:
    time.sleep(max(0.0, due - 0.5 - time.time()))
    deadline = time.time() + timeout
    while len(sent) < n and time.time() < deadline:
        wait = tick()
        if len(sent) < n and wait and wait > 0:
            time.sleep(min(wait, 0.5))


def _ours(n: int) -> dict[str, Any]:
    with bench_env() as (settings, db, client):
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4 + n // 5000)
        spec = {"type": "interval", "every": 3600, "start_at": due.isoformat()}
        insert_triggers(db, [spec] * n)
        full_sync(settings, db=db, client=client)
        app = create_app(settings)
        sch = _BenchScheduler(app)
        sent = sch.sent
        try:
            _drive(sch.tick, sent, n, due.timestamp(), 120)
        finally:
            sch.close()
        require(len(sent) == n, f"dispatch: ours published {len(sent)} of {n} fires")
        late = [t - datetime.fromisoformat(kw["scheduled_for"]).timestamp() for t, kw in sent]
        require({kw["scheduled_for"] for _, kw in sent} == {due.isoformat()}, "dispatch: a fire of another second")
        return {
            "dispatch_s": round(max(t for t, _ in sent) - due.timestamp(), 3),
            "dispatch_first_s": round(min(t for t, _ in sent) - due.timestamp(), 3),
            "dispatch_lateness_p50_ms": round(percentile(late, 50) * 1000, 1),
            "dispatch_lateness_p99_ms": round(percentile(late, 99) * 1000, 1),
        }


def _redbeat(n: int) -> dict[str, Any]:
    with bench_env() as (settings, _db, client):
        app = create_app(settings)
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4 + n // 5000)
        schedule_key = app.conf.redbeat_key_prefix + ":schedule"
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            e = RedBeatSchedulerEntry(
                name=f"entry-{i}",
                task="woow.execute_workflow",
                schedule=interval(run_every=3600),
                kwargs={"workflow_id": "w", "trigger_id": str(i), "user_id": "bench"},
                options={"shadow": "workflow:bench"},
                app=app,
            )
            e.last_run_at = due - timedelta(seconds=3600)  # due exactly at `due`
            queue_redbeat_entry(pipe, e, schedule_key)
            if i % 2000 == 1999:
                pipe.execute()
        pipe.execute()
        sent = _record(app)
        sch = RedBeatScheduler(app)
        sch.lock_key = None  # one beat, in-process: no lock (its lock handler runs only under `celery beat`)
        try:
            _drive(sch.tick, sent, n, due.timestamp(), 180)
        finally:
            sch.close()
        require(len(sent) == n, f"dispatch: plain RedBeat published {len(sent)} of {n} fires")
        late = [t - due.timestamp() for t, _ in sent]
        return {
            "redbeat_dispatch_s": round(max(late), 3),
            "redbeat_dispatch_first_s": round(min(late), 3),
            "redbeat_lateness_p99_ms": round(percentile(late, 99) * 1000, 1),
        }


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    n = (QUICK if quick else FULL) if n is None else n
    require(n > 0, f"dispatch: {n} fires asked for: no work to measure")
    result: dict[str, Any] = {"dispatch_n": n}
    result.update(_redbeat(n))
    result.update(_ours(n))
    # the historical keys only when the run measured 10,000 fires
    aliases = {"dispatch_s": "dispatch_10k_s", "redbeat_dispatch_s": "redbeat_dispatch_10k_s"}
    result.update(named(result, n, FULL, aliases))
    return result


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        run,
        __doc__ or "",
        target="ratio_dispatch_vs_redbeat <= 1.5",
        ratio=("ratio_dispatch_vs_redbeat", "dispatch_s", "redbeat_dispatch_s"),
        counted=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
