"""Fire lateness of seconds-resolution triggers: publish time - scheduled_for, p50 / p99.

    python -m bench.lateness_bench [--quick] [--json] [--n N]

Two runs of ours, then the baseline:

- 1,000 triggers (100 fires due at every second): ``lateness_p50_ms`` / ``lateness_p99_ms``;
- N triggers (10,000, ``--quick`` 2,000: N/10 fires due at every second): ``lateness_big_*``, and
  ``lateness_10k_p50_ms`` / ``lateness_10k_p99_ms`` when N is 10,000;
- plain RedBeat with N interval entries (every 10 s, N/10 due at every second at the start), same
  duration: ``redbeat_lateness_big_*``, its lateness being publish time - the entry's own due time
  (its last run + 10 s; RedBeat re-anchors every entry at its publish time, so its fires drift
  instead of piling up, which only flatters it); ``redbeat_lateness_big_fires`` of about
  ``redbeat_lateness_big_due`` went out in the window (at 10,000 it keeps up or falls behind with
  the machine's speed: a fire it never published counts nowhere, which flatters it too).

Half the triggers are Quartz cron (``s/10 * * * * ?``), half anchored intervals (every 10 s),
spread over the ten seconds.  Our scheduler runs in this process as under ``celery beat``
(heartbeats, bookkeeping, reconciles included) for 60 s (15 s with ``--quick``) per run; a fire
counts as published when the batch holding it was written to the broker; fires due in the first
two seconds (start-up) are left out.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import schedule as interval
from redbeat.schedulers import RedBeatScheduler, RedBeatSchedulerEntry

from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import named, require
from ._sched_env import PublishClock, bench_env, bench_main, insert_triggers, percentile, queue_redbeat_entry

TRIGGERS = 1000
BIG = 10_000
BIG_QUICK = 2_000
EVERY = 10


def specs(base: datetime, n: int = TRIGGERS) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        offset = i % EVERY
        if i % 2:
            out.append({"type": "cron", "expression": f"{offset}/{EVERY} * * * * ?"})
        else:
            start = (base + timedelta(seconds=offset)).isoformat()
            out.append({"type": "interval", "every": EVERY, "start_at": start})
    return out


def _summary(
    late: list[float], n: int, duration: float, first_full: int, what: str, *, min_share: float = 0.5
) -> dict[str, Any]:
    """p50 / p99 / max of ``late`` (ms), with how many fires went out of about how many were due.

    Refused when nothing went out, or less than ``min_share`` of what was due: the figures would
    describe a stalled run."""
    require(bool(late), f"lateness ({what}): no fire due after {first_full} was published in {duration:.0f} s")
    expected = n / EVERY * max(1.0, time.time() - first_full - 1)
    require(
        len(late) >= expected * min_share,
        f"lateness ({what}): {len(late)} fires published, about {expected:.0f} due "
        f"(under {min_share:.0%}: a stalled run)",
    )
    return {
        "fires": len(late),
        "due": round(expected),
        "p50_ms": round(percentile(late, 50), 1),
        "p99_ms": round(percentile(late, 99), 1),
        "max_ms": round(max(late), 1),
    }


def _ours(n: int, duration: float) -> dict[str, Any]:
    with bench_env() as (settings, db, client):
        base = datetime.now(UTC).replace(second=0, microsecond=0)
        insert_triggers(db, specs(base, n), updated_at=datetime.now(UTC))
        full_sync(settings, db=db, client=client)
        app = create_app(settings)
        sch = PublishClock(app)
        start = time.time()
        try:
            while time.time() - start < duration:
                wait = sch.tick()
                if wait and wait > 0:
                    time.sleep(wait)
        finally:
            sch.close()
        # the first second may hold fires that became due during start-up: measure from the second after
        first_full = int(start) + 2
        late = [
            (t - at) * 1000
            for t, kw in sch.sent
            if (at := datetime.fromisoformat(kw["scheduled_for"]).timestamp()) >= first_full
        ]
        out = _summary(late, n, duration, first_full, f"ours, {n} triggers")
        out["prepared"] = sch.fires_prepared
        return out


def _redbeat(n: int, duration: float) -> dict[str, Any]:
    with bench_env() as (settings, _db, client):
        app = create_app(settings)
        base = int(time.time()) + 3 + n // 5000
        schedule_key = app.conf.redbeat_key_prefix + ":schedule"
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            e = RedBeatSchedulerEntry(
                name=f"entry-{i}",
                task="woow.execute_workflow",
                schedule=interval(run_every=EVERY),
                kwargs={"workflow_id": "w", "trigger_id": str(i), "user_id": "bench"},
                options={"shadow": "workflow:bench"},
                app=app,
            )
            # first due at base + (i % 10): N/10 entries due at every second
            e.last_run_at = datetime.fromtimestamp(base + i % EVERY - EVERY, UTC)
            queue_redbeat_entry(pipe, e, schedule_key)
            if i % 2000 == 1999:
                pipe.execute()
        pipe.execute()
        sch = RedBeatScheduler(app)
        sch.lock_key = None  # one beat, in-process: no lock (its lock handler runs only under `celery beat`)
        sent: list[tuple[float, float]] = []  # (publish time, the entry's own due time)
        real: Callable[..., Any] = sch.apply_async

        def apply_async(entry: Any, *args: Any, **kwargs: Any) -> Any:
            due = (entry.last_run_at + timedelta(seconds=EVERY)).timestamp()
            result = real(entry, *args, **kwargs)
            sent.append((time.time(), due))
            return result

        sch.apply_async = apply_async
        time.sleep(max(0.0, base - 0.5 - time.time()))
        start = time.time()
        try:
            while time.time() - start < duration:
                wait = sch.tick()
                if wait and wait > 0:
                    time.sleep(min(wait, 1.0))
        finally:
            sch.close()
        first_full = base + 2
        late = [(t - due) * 1000 for t, due in sent if due >= first_full]
        # plain RedBeat publishes about 1,000 fires a second on this machine kind: at 10,000 entries
        # (1,000 due a second) it keeps up or falls behind with the machine's speed of the moment
        # (45,195 and 27,123 of about 59,000 in two runs of the same code).  Falling behind is
        # what is being measured, not a broken run: its fires not yet published count nowhere,
        # which only flatters it, and ``redbeat_lateness_big_fires`` / ``_due`` say how many.
        # A tenth still refuses a baseline that stalled.
        return _summary(late, n, duration, first_full, f"plain RedBeat, {n} entries", min_share=0.1)


def run(quick: bool = False, n: int | None = None) -> dict[str, Any]:
    duration = 15.0 if quick else 60.0
    big = (BIG_QUICK if quick else BIG) if n is None else n
    require(big > 0, f"lateness: {big} triggers asked for: no work to measure")
    small = _ours(TRIGGERS, duration)
    result: dict[str, Any] = {
        "lateness_triggers": TRIGGERS,
        "lateness_seconds": duration,
        "lateness_fires": small["fires"],
        "lateness_prepared": small["prepared"],
        "lateness_p50_ms": small["p50_ms"],
        "lateness_p99_ms": small["p99_ms"],
        "lateness_max_ms": small["max_ms"],
    }
    ours = _ours(big, duration)
    base = _redbeat(big, duration)
    result.update({"lateness_big_triggers": big, "lateness_big_fires": ours["fires"]})
    result.update({f"lateness_big_{k}": ours[k] for k in ("prepared", "p50_ms", "p99_ms", "max_ms")})
    result.update({f"redbeat_lateness_big_{k}": base[k] for k in ("fires", "due", "p50_ms", "p99_ms", "max_ms")})
    aliases = {
        "lateness_big_p50_ms": "lateness_10k_p50_ms",
        "lateness_big_p99_ms": "lateness_10k_p99_ms",
        "redbeat_lateness_big_p50_ms": "redbeat_lateness_10k_p50_ms",
        "redbeat_lateness_big_p99_ms": "redbeat_lateness_10k_p99_ms",
    }
    result.update(named(result, big, BIG, aliases))
    return result


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        run,
        __doc__ or "",
        target="lateness_p50_ms <= 5, lateness_p99_ms <= 20; lateness_10k_p99_ms <= 100",
        counted=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
