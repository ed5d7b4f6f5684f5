"""A burst: N fires due in the same second, published by one in-process beat holding a 5 s beat
lock, beside plain RedBeat's publish rate for 10,000 entries due in one second (same run).

    python -m bench.burst_bench [--quick] [--json] [--n N] [--cold]

N is 100,000 (``--quick``: 10,000).  Ours runs as under ``celery beat`` minus the PostgreSQL
maintenance thread, with ``beat_lock_timeout`` = 5 s: a watcher polls the lock key from its own
Redis connection every 100 ms, and the lock counts as held throughout only when the key held our
token at every poll from before the due second until the last publish, and the scheduler still
held it at the end.  Plain RedBeat runs without its lock (in-process it has no lock handler; under
``celery beat`` with a 5 s lock it dies of ``LockNotOwnedError`` at this size): its rate is the
baseline.  Time = last publish - due second; rate = N / time.  ``burst_prepared`` says how many fires
went out as messages built ahead of the due second (prepared dispatch, within the
``burst_idle_before_s`` seconds between the end of set-up and the due second).  ``--cold`` starts
the beat's loop only one second before the due second (a beat that just started or took over:
little time to prepare); its figures carry ``burst_cold: true`` and no ``burst_100k_s``.
A fire counts as published when it is in the broker: for RedBeat when its ``send_task`` returns,
for ours when its batch was written.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import elapsed, named, require
from ._sched_env import PublishClock, bench_env, bench_main, insert_triggers, percentile
from .dispatch_bench import _redbeat

FULL = 100_000
QUICK = 10_000
BASELINE = 10_000  # plain RedBeat's rate is measured with this many entries
LOCK_TIMEOUT = 5.0
POLL = 0.1


class _BurstScheduler(PublishClock):
    run_maintenance = False  # dispatch only, as the baseline


class _LockWatch(threading.Thread):
    """Polls the beat lock key: which tokens it held, and whether it was ever missing."""

    def __init__(self, url: str, name: str) -> None:
        super().__init__(daemon=True, name="burst-lock-watch")
        self._client = redis.Redis.from_url(url)
        self._name = name
        self.values: list[Any] = []
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.is_set():
                self.values.append(self._client.get(self._name))
                self._done.wait(POLL)
            self.values.append(self._client.get(self._name))
        finally:
            self._client.close()

    def stop(self) -> None:
        self._done.set()
        self.join(10)

    def held_by(self, token: bytes | None) -> bool:
        return token is not None and bool(self.values) and all(v == token for v in self.values)


def _ours(n: int, cold: bool = False) -> dict[str, Any]:
    lead = 4 + n // 1500  # set-up (insert + full sync) must end before the due second
    with bench_env(beat_lock_timeout=LOCK_TIMEOUT, beat_max_loop_interval=1.0) as (settings, db, client):
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lead)
        spec = {"type": "interval", "every": 3600, "start_at": due.isoformat()}
        insert_triggers(db, [spec] * n)
        full_sync(settings, db=db, client=client)
        require(time.time() < due.timestamp() - 1, f"burst: set-up ended after the due second (lead {lead} s)")
        if cold:  # a beat that starts (or takes over) one second before the burst
            time.sleep(max(0.0, due.timestamp() - 1.0 - time.time()))
        app = create_app(settings)
        sch = _BurstScheduler(app)
        sent = sch.sent
        watch: _LockWatch | None = None
        try:
            idle_before = due.timestamp() - time.time()
            sch.tick()  # takes the beat lock; nothing is due yet
            lock = sch._beat_lock
            require(lock is not None and lock.held, "burst: the scheduler did not take the beat lock")
            assert lock is not None
            token = lock._lock.local.token
            watch = _LockWatch(settings.redis_url, sch.lock_name)
            watch.start()
            # as under `celery beat`: tick, sleep what it asks (at most the loop interval), from the
            # lock's taking until every fire is out
            deadline = due.timestamp() + 60 + n / 500
            while len(sent) < n and time.time() < deadline:
                wait = sch.tick()
                if len(sent) < n and wait > 0:
                    time.sleep(min(wait, settings.beat_max_loop_interval))
            still_leader = sch.is_leader
        finally:
            if watch is not None:
                watch.stop()
            sch.close()
        require(len(sent) == n, f"burst: ours published {len(sent)} of {n} fires")
        require({kw["scheduled_for"] for _, kw in sent} == {due.isoformat()}, "burst: a fire of another second")
        assert watch is not None
        held = still_leader and watch.held_by(token)
        last = elapsed(max(t for t, _ in sent) - due.timestamp(), "burst")
        late = [t - due.timestamp() for t, _ in sent]
        return {
            "burst_s": round(last, 3),
            "burst_per_s": round(n / last),
            "burst_first_s": round(min(late), 3),
            "burst_p50_s": round(percentile(late, 50), 3),
            "burst_lock_held": held,
            "burst_lock_polls": len(watch.values),
            "burst_lock_timeout_s": LOCK_TIMEOUT,
            # fires that went out as messages built ahead of the due second (prepared dispatch), and
            # how long before that second the beat's loop started (the time it had to prepare them)
            "burst_prepared": sch.fires_prepared,
            "burst_idle_before_s": round(idle_before, 1),
        }


def run(quick: bool = False, n: int | None = None, cold: bool = False) -> dict[str, Any]:
    n = (QUICK if quick else FULL) if n is None else n
    require(n > 0, f"burst: {n} fires asked for: no work to measure")
    base_n = min(BASELINE, n)
    result: dict[str, Any] = {"burst_n": n, "redbeat_burst_n": base_n}
    base = _redbeat(base_n)
    base_s = elapsed(base["redbeat_dispatch_s"], "burst: plain RedBeat")
    result["redbeat_burst_s"] = base_s
    result["redbeat_burst_per_s"] = round(base_n / base_s)
    result.update(_ours(n, cold))
    if cold:
        result["burst_cold"] = True
    else:
        result.update(named(result, n, FULL, {"burst_s": "burst_100k_s"}))
    return result


def main(argv: list[str] | None = None) -> int:
    return bench_main(
        run,
        __doc__ or "",
        target="burst_per_s >= 10 x redbeat_burst_per_s (100,000 in <= 10 s), burst_lock_held True",
        ratio=("ratio_burst_vs_redbeat", "burst_per_s", "redbeat_burst_per_s"),
        counted=True,
        argv=argv,
        flags={"cold": "start the beat one second before the burst (little time to prepare)"},
    )


if __name__ == "__main__":
    sys.exit(main())
