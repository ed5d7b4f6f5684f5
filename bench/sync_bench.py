"""Full sync of N triggers from PostgreSQL into Redis vs writing the same number of entries with
RedBeat's own API in a Redis pipeline (measured in the same run).

    python -m bench.sync_bench [--quick] [--json] [--n N]

N is 100,000 (``--quick``: 20,000); the full run (no ``--quick``, no ``--n``) also syncs 300,000
(``sync_300k_s`` beside ``redbeat_pipelined_300k_s``).  Redis memory per entry (``MEMORY USAGE`` of
1,000 entry hashes, averaged, plus the schedule zset's share) is measured on both sides' entries:
``sync_bytes_per_entry`` beside ``redbeat_bytes_per_entry``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import schedule as interval
from redbeat.decoder import RedBeatJSONEncoder
from redbeat.schedulers import RedBeatSchedulerEntry

from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import elapsed, named, require
from ._sched_env import bench_env, bench_main, clear_prefix, insert_triggers

FULL = 100_000
QUICK = 20_000
LARGE = 300_000


def specs(n: int) -> list[dict[str, Any]]:
    """A realistic mix: Quartz cron (distinct expressions), anchored intervals, one-time triggers."""
    start = "2026-01-01T00:00:00Z"
    future = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0).isoformat()
    out: list[dict[str, Any]] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:  # 86,400 distinct expressions: no help from any cache
            out.append({"type": "cron", "expression": f"{i % 60} {(i // 60) % 60} {(i // 3600) % 24} * * ?"})
        elif kind == 1:
            out.append({"type": "interval", "every": 60 + i, "start_at": start})
        else:
            out.append({"type": "once", "run_at": future})
    return out


def bytes_per_entry(client: Any, schedule_key: str, n: int) -> float:
    """Redis memory of one entry: its hash (average of up to 1,000) plus its share of the zset."""
    members = client.zrange(schedule_key, 0, 999)
    require(len(members) == min(n, 1000), f"sync: the schedule holds {len(members)} sampled entries, not {n}")
    hashes = sum(int(client.memory_usage(k, samples=0) or 0) for k in members) / len(members)
    return hashes + int(client.memory_usage(schedule_key, samples=0) or 0) / n


def redbeat_pipelined(settings: Any, client: Any, n: int, batch: int) -> tuple[float, float]:
    """(seconds, Redis bytes per entry) of the baseline: RedBeat entries built with its API, saved in a pipeline."""
    """Baseline: RedBeat entries (interval schedules) built with its API, saved in a pipeline."""
    app = create_app(settings)
    app.conf.redbeat_key_prefix = f"{settings.key_prefix}plain:"
    schedule_key = app.conf.redbeat_key_prefix + ":schedule"
    t0 = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        e = RedBeatSchedulerEntry(
            name=f"entry-{i}",
            task="woow.execute_workflow",
            schedule=interval(run_every=60 + i % 3600),
            kwargs={"workflow_id": "w", "trigger_id": str(i), "user_id": "bench"},
            options={"shadow": "workflow:bench"},
            app=app,
        )
        definition = {
            "name": e.name,
            "task": e.task,
            "args": e.args,
            "kwargs": e.kwargs,
            "options": e.options,
            "schedule": e.schedule,
            "enabled": e.enabled,
        }
        pipe.hset(e.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
        pipe.hsetnx(e.key, "meta", json.dumps({"last_run_at": e.last_run_at}, cls=RedBeatJSONEncoder))
        pipe.zadd(schedule_key, {e.key: e.score})
        if (i + 1) % batch == 0:
            pipe.execute()
    pipe.execute()
    elapsed = time.perf_counter() - t0
    size = bytes_per_entry(client, schedule_key, n)
    clear_prefix(client, f"{settings.key_prefix}plain:")
    return elapsed, size


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    n = (QUICK if quick else FULL) if n is None else n
    require(n > 0, f"sync: {n} triggers asked for: no work to measure")
    with bench_env() as (settings, db, client):
        insert_triggers(db, specs(n))
        base, base_size = redbeat_pipelined(settings, client, n, settings.sync_batch_size)
        t0 = time.perf_counter()
        report = full_sync(settings, db=db, client=client)
        ours = time.perf_counter() - t0
        require(report.added == n, f"sync: added {report.added} of {n} entries")
        size = bytes_per_entry(client, Keys(settings.key_prefix).redbeat_schedule, n)
        t0 = time.perf_counter()
        again = full_sync(settings, db=db, client=client)
        noop = time.perf_counter() - t0
        require(again.unchanged == n, f"sync: second sync found {again.unchanged} of {n} unchanged")
        clear_prefix(client, settings.key_prefix + "redbeat:")
        t0 = time.perf_counter()
        rebuilt = full_sync(settings, db=db, client=client)
        rebuild = time.perf_counter() - t0
        require(rebuilt.added == n, f"sync: rebuild added {rebuilt.added} of {n} entries")
    ours, base = elapsed(ours, "sync"), elapsed(base, "sync: RedBeat pipelined")
    result: dict[str, Any] = {
        "sync_n": n,
        "sync_s": round(ours, 3),
        "redbeat_pipelined_s": round(base, 3),
        "sync_entries_per_s": round(n / ours),
        "redbeat_pipelined_entries_per_s": round(n / base),
        "sync_unchanged_s": round(noop, 3),
        "sync_rebuild_after_flush_s": round(rebuild, 3),
        "sync_bytes_per_entry": round(size),
        "redbeat_bytes_per_entry": round(base_size),
    }
    # the historical keys only when the run measured 100,000 triggers
    result.update(named(result, n, FULL, {"sync_s": "sync_100k_s", "redbeat_pipelined_s": "redbeat_pipelined_100k_s"}))
    if not quick and n == FULL:
        result.update(_large())
    return result


def _large() -> dict[str, Any]:
    """The full sync of 300,000 triggers beside RedBeat pipelined, same run."""
    with bench_env() as (settings, db, client):
        insert_triggers(db, specs(LARGE))
        base, _ = redbeat_pipelined(settings, client, LARGE, settings.sync_batch_size)
        t0 = time.perf_counter()
        report = full_sync(settings, db=db, client=client)
        ours = time.perf_counter() - t0
        require(report.added == LARGE, f"sync: added {report.added} of {LARGE} entries")
    return {
        "sync_300k_s": round(elapsed(ours, "sync 300k"), 3),
        "redbeat_pipelined_300k_s": round(elapsed(base, "sync 300k: RedBeat pipelined"), 3),
    }


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        run,
        __doc__ or "",
        target="ratio_sync_vs_redbeat <= 2",
        ratio=("ratio_sync_vs_redbeat", "sync_s", "redbeat_pipelined_s"),
        counted=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
