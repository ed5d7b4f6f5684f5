"""Beat's CPU while idle with N entries, beside plain RedBeat's with N entries (same run).

    python -m bench.idle_bench [--quick] [--json] [--n N]

N is 100,000 (``--quick``: 20,000), none due during the measurement (interval triggers every hour,
first fire an hour ahead, last changed two hours ago).  Ours runs in this process as under ``celery beat``, PostgreSQL
maintenance thread included (heartbeats, bookkeeping drains, the fire-journal sweep, incremental
reconciles every ``reconcile_interval``); the measurement starts once its first full reconcile (run
on taking the lock) has finished, and lasts 30 s (10 s with ``--quick``).  Plain RedBeat runs its
own tick loop over N interval entries for as long.  CPU = this process's CPU time (all threads)
over wall time, in percent of one core.  A run that did not tick, or whose schedule did not hold
the N entries, prints no figure.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import schedule as interval
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry
from sqlalchemy import update

from woow_scheduler.db import Workflow
from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import elapsed, named, require
from ._sched_env import PublishClock, bench_env, bench_main, insert_triggers, queue_redbeat_entry

FULL = 100_000
QUICK = 20_000


def _loop(tick: Any, seconds: float) -> tuple[float, float, int]:
    """Drive ``tick`` as celery beat does for ``seconds``: (cpu seconds, wall seconds, ticks)."""
    ticks = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall0 < seconds:
        wait = tick()
        ticks += 1
        if wait and wait > 0:
            time.sleep(min(wait, 1.0, max(0.0, seconds - (time.perf_counter() - wall0))))
    return time.process_time() - cpu0, time.perf_counter() - wall0, ticks


def _ours(n: int, seconds: float) -> dict[str, Any]:
    with bench_env() as (settings, db, client):
        first = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0).isoformat()
        # last changed two hours ago: an incremental reconcile re-reads triggers changed within its
        # 60 s margin, which right after an insert would be all N of them (not an idle beat)
        changed = datetime.now(UTC) - timedelta(hours=2)
        insert_triggers(db, [{"type": "interval", "every": 3600, "start_at": first}] * n, updated_at=changed)
        with db.session() as session:  # (and their workflow: a workflow's change re-reads its triggers)
            session.execute(update(Workflow).values(updated_at=changed))
        full_sync(settings, db=db, client=client)
        app = create_app(settings)
        sch = PublishClock(app)  # with its maintenance thread, as under celery beat
        full_done = threading.Event()
        reconciled = sch.metrics.reconciled

        def watch(kind: str, *args: Any, **kwargs: Any) -> None:
            reconciled(kind, *args, **kwargs)
            if kind == "full":
                full_done.set()

        sch.metrics.reconciled = watch  # type: ignore[method-assign]
        try:
            warm0 = time.perf_counter()
            while not full_done.is_set() and time.perf_counter() - warm0 < 300:
                time.sleep(min(sch.tick(), 1.0))
            require(full_done.is_set(), "idle: the beat's first full reconcile did not finish in 300 s")
            warm = time.perf_counter() - warm0
            entries = int(client.zcard(sch.keys.redbeat_schedule))
            cpu, wall, ticks = _loop(sch.tick, seconds)
        finally:
            sch.close()
        require(entries == n, f"idle: the schedule held {entries} of {n} entries")
        require(ticks > 0 and not sch.sent, f"idle: {ticks} ticks, {len(sch.sent)} fires: not an idle beat")
        return {"cpu_pct": round(100 * cpu / elapsed(wall, "idle"), 2), "ticks": ticks, "warm_s": round(warm, 1)}


def _redbeat(n: int, seconds: float) -> dict[str, Any]:
    with bench_env() as (settings, _db, client):
        app = create_app(settings)
        schedule_key = app.conf.redbeat_key_prefix + ":schedule"
        pipe = client.pipeline(transaction=False)
        now = datetime.now(UTC)
        for i in range(n):
            e = RedBeatSchedulerEntry(
                name=f"entry-{i}",
                task="woow.execute_workflow",
                schedule=interval(run_every=3600),
                kwargs={"workflow_id": "w", "trigger_id": str(i), "user_id": "bench"},
                options={"shadow": "workflow:bench"},
                app=app,
            )
            e.last_run_at = now  # next due in an hour
            queue_redbeat_entry(pipe, e, schedule_key)
            if i % 2000 == 1999:
                pipe.execute()
        pipe.execute()
        sch = RedBeatScheduler(app)
        sch.lock_key = None  # one beat, in-process: no lock (its lock handler runs only under `celery beat`)
        published: list[Any] = []
        real = sch.apply_async

        def apply_async(*args: Any, **kwargs: Any) -> Any:
            published.append(args)
            return real(*args, **kwargs)

        sch.apply_async = apply_async
        try:
            entries = int(client.zcard(schedule_key))
            cpu, wall, ticks = _loop(sch.tick, seconds)
        finally:
            sch.close()
        require(entries == n, f"idle: plain RedBeat's schedule held {entries} of {n} entries")
        require(ticks > 0 and not published, f"idle: RedBeat {ticks} ticks, {len(published)} fires: not idle")
        return {"cpu_pct": round(100 * cpu / elapsed(wall, "idle: RedBeat"), 2), "ticks": ticks}


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    n = (QUICK if quick else FULL) if n is None else n
    require(n > 0, f"idle: {n} entries asked for: no work to measure")
    seconds = 10.0 if quick else 30.0
    base = _redbeat(n, seconds)
    ours = _ours(n, seconds)
    result: dict[str, Any] = {
        "idle_n": n,
        "idle_seconds": seconds,
        "idle_cpu_pct": ours["cpu_pct"],
        "redbeat_idle_cpu_pct": base["cpu_pct"],
        "idle_ticks": ours["ticks"],
        "redbeat_idle_ticks": base["ticks"],
        "idle_first_full_reconcile_s": ours["warm_s"],
    }
    result.update(named(result, n, FULL, {"idle_cpu_pct": "idle_100k_cpu_pct"}))
    return result


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        run,
        __doc__ or "",
        target="idle_cpu_pct beside redbeat_idle_cpu_pct (no target in issue 15: reported)",
        counted=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
