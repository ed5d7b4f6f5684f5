"""Fire lateness with 1,000 seconds-resolution triggers: publish time - scheduled_for, p50 / p99.

    python -m bench.lateness_bench [--quick] [--json]

500 Quartz cron triggers (``s/10 * * * * ?``) and 500 anchored interval triggers (every 10 s),
spread over the ten seconds, so 100 fires are due at every second boundary.  Our scheduler runs
in this process as under ``celery beat`` (heartbeats, bookkeeping, reconciles included) for 60 s
(15 s with ``--quick``); a fire counts as published when the batch holding it was flushed to the
broker.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from woow_scheduler.messaging.app import create_app
from woow_scheduler.scheduler.sync import full_sync

from ._guard import require
from ._sched_env import PublishClock, bench_env, bench_main, insert_triggers, percentile

TRIGGERS = 1000


def specs(base: datetime) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(TRIGGERS):
        offset = i % 10
        if i % 2:
            out.append({"type": "cron", "expression": f"{offset}/10 * * * * ?"})
        else:
            start = (base + timedelta(seconds=offset)).isoformat()
            out.append({"type": "interval", "every": 10, "start_at": start})
    return out


def run(quick: bool = False) -> dict[str, Any]:
    duration = 15.0 if quick else 60.0
    with bench_env() as (settings, db, client):
        base = datetime.now(UTC).replace(second=0, microsecond=0)
        insert_triggers(db, specs(base), updated_at=datetime.now(UTC))
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
        sent = [(t, kw["scheduled_for"]) for t, kw in sch.sent]
        late = [(t - datetime.fromisoformat(s).timestamp()) * 1000 for t, s in sent]
        late = [
            ms for (t, s), ms in zip(sent, late, strict=True) if datetime.fromisoformat(s).timestamp() >= first_full
        ]
        require(bool(late), f"lateness: no fire due after {first_full} was published in {duration:.0f} s")
        fires_per_s = len(late) / max(1.0, (time.time() - first_full))
    return {
        "lateness_triggers": TRIGGERS,
        "lateness_seconds": duration,
        "lateness_fires": len(late),
        "lateness_fires_per_s": round(fires_per_s, 1),
        "lateness_p50_ms": round(percentile(late, 50), 1),
        "lateness_p99_ms": round(percentile(late, 99), 1),
        "lateness_max_ms": round(max(late), 1),
    }


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, __doc__ or "", target="lateness_p99_ms <= 100", argv=argv)


if __name__ == "__main__":
    sys.exit(main())
