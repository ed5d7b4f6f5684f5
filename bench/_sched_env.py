"""Shared set-up of the scheduling benchmarks: a throw-away PostgreSQL database and Redis prefix
(from tests.support, which tests and benchmarks share), and the benchmarks' command line."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import redis
from redbeat.decoder import RedBeatJSONEncoder

from tests.support.factories import insert_triggers
from tests.support.stores import clear_prefix, scratch_stores
from woow_scheduler.db import Database
from woow_scheduler.scheduler.beat import WoowScheduler
from woow_scheduler.scheduler.schedule import iso_utc
from woow_scheduler.settings import Settings

from ._guard import NoWork, check_one_source

__all__ = ["PublishClock", "bench_env", "bench_main", "clear_prefix", "insert_triggers", "percentile"]


class PublishClock(WoowScheduler):
    """Our scheduler, recording when each fire reached the broker: ``sent`` holds ``(time,
    {"scheduled_for": ...})`` per fire published, stamped after its batch was flushed (beat
    buffers a chunk's messages and writes them at once, so a wrapped ``send_task`` would return
    before the message is in the broker and report it early)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[float, dict[str, Any]]] = []
        super().__init__(*args, **kwargs)

    def _count_published(
        self, jobs: list[tuple[dict[str, Any], datetime]], kinds: list[str], outcomes: list[Exception | None]
    ) -> None:
        now = time.time()
        self.sent.extend(
            (now, {"scheduled_for": iso_utc(fire)})
            for (_, fire), outcome in zip(jobs, outcomes, strict=True)
            if outcome is None
        )
        super()._count_published(jobs, kinds, outcomes)


def bench_env(**overrides: Any) -> AbstractContextManager[tuple[Settings, Database, redis.Redis]]:
    """Settings, a migrated database of its own and a Redis client; everything removed afterwards."""
    return scratch_stores("woow_bench", **overrides)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def bench_main(
    run: Callable[..., dict[str, Any]],
    doc: str,
    *,
    target: str,
    ratio: tuple[str, str, str] | None = None,
    counted: bool = False,
    argv: list[str] | None = None,
    flags: dict[str, str] | None = None,
) -> int:
    """Shared command line of the benchmarks: ``[--quick] [--json] [--n N]``, a table or one JSON
    object.  A run that saw no work prints one line on stderr and exits 1, and no figure.

    ``ratio`` = (name, numerator key, denominator key) adds that ratio to the result; ``counted``
    adds ``--n`` (how many fires / triggers instead of the default count); ``flags`` = {name: help}
    adds ``--<name>`` switches, passed to ``run`` as keyword arguments.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    if counted:
        parser.add_argument("--n", type=int, default=None, help="how many instead of the default count")
    for name, text in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=text)
    args = parser.parse_args(argv)
    extra = {name: getattr(args, name) for name in flags or {}}
    try:
        check_one_source()
        result = run(args.quick, n=args.n, **extra) if counted else run(args.quick, **extra)
    except NoWork as exc:
        print(f"{parser.prog}: no figure: {exc}", file=sys.stderr)
        return 1
    if ratio is not None:
        name, num, den = ratio
        result[name] = round(result[num] / result[den], 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:36} {v}")
        print(f"target: {target}", file=sys.stderr)
    return 0


def queue_redbeat_entry(pipe: Any, entry: Any, schedule_key: str) -> None:
    """Queue on ``pipe`` the three writes of RedBeat's own ``RedBeatSchedulerEntry.save`` for
    ``entry`` (its definition, its meta, its place in the schedule): the plain-RedBeat baselines
    load their entries with it, in pipelines of thousands instead of a round trip each."""
    definition = {k: getattr(entry, k) for k in ("name", "task", "args", "kwargs", "options", "schedule", "enabled")}
    pipe.hset(entry.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
    pipe.hset(entry.key, "meta", json.dumps({"last_run_at": entry.last_run_at}, cls=RedBeatJSONEncoder))
    pipe.zadd(schedule_key, {entry.key: entry.score})
