"""End-to-end executions per second of a one-step ``log`` workflow vs a bare Celery no-op task.

Both run on the same broker in the same run, each on a fresh prefork worker with ``--concurrency``
processes (default 2, the shipped default of ``Procfile`` and ``docker-compose.yml``; the bare and
the woow worker always get the same number):
N messages are published first, then a worker is started and timed from the first message it takes
to the queue (and its unacked set) being empty.  An execution is the whole path: payload check,
claim in PostgreSQL, per-workflow lock in Redis, the step, the recorded outcome, the release.

The two are measured in interleaved rounds (bare, exec, then exec, bare, ...) and the medians are
compared: on a shared virtual machine the speed of the same code drifts by tens of percent within
minutes, and alternating puts both sides under the same drift.  Every round is printed.

    python -m bench.exec_bench [--quick] [--json] [--rounds N] [--n N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from bench._guard import NoWork, check_one_source, rate, require
from tests.support.procs import CeleryProcess, worker_args
from tests.support.stores import PG_SERVER_URL, scratch_stores
from woow_scheduler.db import Database
from woow_scheduler.db.models import Execution, Trigger, Workflow
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.keys import Keys
from woow_scheduler.messaging.payload import TASK_EXECUTE, FirePayload, shadow_name
from woow_scheduler.settings import Settings
from woow_scheduler.worker import get_app

WORKFLOWS = 200  # fires rotate over these, so two processes rarely meet the same workflow's lock


def _worker_command(code_dir: Path, args: list[str]) -> list[str]:
    """The bench worker started in another checkout (``bench.exec_ab``): its code, these stores."""
    cmd = [sys.executable, "-m", "celery", "-A", "bench.exec_app", "worker", *args]
    return ["sh", "-c", f"cd {shlex.quote(str(code_dir))} && exec " + " ".join(shlex.quote(c) for c in cmd)]


DEFAULT_CONCURRENCY = 2  # pool processes of every benchmark worker: the shipped default


def _drain_rate(
    client: redis.Redis,
    settings: Settings,
    n: int,
    log_dir: Path,
    label: str,
    code_dir: Path | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> tuple[float, int]:
    """Start a worker on the ``n`` published messages and time it from the first message it takes
    until the queue and its unacked set are both empty: (messages per second, messages done).

    "Both empty" is read with two commands while kombu moves a message from the queue to the
    unacked set with two (BRPOP, then the unacked HSET from the worker): a message caught between
    them looks done.  The worker's shutdown gives such a message back to the queue, so whatever is
    in the queue or the unacked set once the worker has stopped was taken but not done: it is not
    counted, and it is removed so the next round starts with exactly its own messages."""
    keys = Keys(settings.key_prefix)
    queue_key, unacked = keys.broker_queue(settings.queue), keys.broker_unacked
    held = int(client.llen(queue_key))
    # the messages must be where the harness looks before a worker is timed on them: an empty queue
    # "drains" at once (this once reported 10^9 tasks/s with the broker on another Redis database)
    require(
        held == n,
        f"{label}: the queue {queue_key!r} on {settings.redis_url} holds {held} of the {n} messages published "
        f"to {settings.effective_broker_url}: the broker is not the Redis the harness watches",
    )
    args = worker_args(concurrency, "prefork", name=f"bench{label}", loglevel="WARNING")
    proc = CeleryProcess(
        "worker",
        settings,
        args,
        log_path=log_dir / f"{label}.log",
        app="bench.exec_app",
        command=_worker_command(code_dir, args) if code_dir is not None else None,
    )
    proc.start()
    t0 = t1 = None
    try:
        deadline = time.monotonic() + 120 + n / 100
        while time.monotonic() < deadline:
            left = int(client.llen(queue_key))
            now = time.monotonic()
            if t0 is None and left < n:
                t0 = now
            if t0 is not None and left == 0 and int(client.hlen(unacked)) == 0:
                t1 = now
                break
            if not proc.alive():
                raise RuntimeError(f"worker died:\n{proc.log()[-3000:]}")
            time.sleep(0.01)
        else:
            raise TimeoutError(f"{label}: queue not drained:\n{proc.log()[-3000:]}")
    finally:
        proc.stop()
    undone = int(client.llen(queue_key)) + int(client.hlen(unacked))
    if undone:
        client.delete(queue_key, unacked, keys.broker_unacked_index)
        print(
            f"exec_bench: {label}: {undone} message(s) taken but not done when the queue looked empty, "
            "given back at the worker's shutdown: not counted, removed",
            file=sys.stderr,
            flush=True,
        )
    done = n - undone
    return rate(done, t1 - t0, label, expected=done), done


def _publish_noops(app: Any, settings: Settings, n: int) -> None:
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task("bench.noop", queue=settings.queue, producer=producer)


def _publish_fires(app: Any, settings: Settings, pairs: list[tuple[Any, str, Any]], n: int, first: int) -> None:
    base = datetime(2030, 1, 1, tzinfo=UTC)
    with app.producer_or_acquire() as producer:
        for i in range(first, first + n):
            wid, name, tid = pairs[i % WORKFLOWS]
            kwargs = FirePayload(workflow_id=wid, trigger_id=tid, scheduled_for=base + timedelta(seconds=i)).to_kwargs()
            app.send_task(
                TASK_EXECUTE, kwargs=kwargs, queue=settings.queue, shadow=shadow_name(name), producer=producer
            )


def _finished(db: Any) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Execution)
                .where(Execution.status.in_([ExecutionStatus.SUCCEEDED, ExecutionStatus.SKIPPED]))
            )
            or 0
        )


def seed_workflows(db: Database, count: int = WORKFLOWS) -> list[tuple[Any, str, Any]]:
    """The benchmark's ``count`` one-step ``log`` workflows, each with an interval trigger:
    (workflow id, workflow name, trigger id) of each, the fires' addresses (also seeds
    ``bench/exec_profile.py``)."""
    with db.session() as s:
        flows = [
            Workflow(
                name=f"bench-{i}",
                steps=[{"name": "log", "type": "log", "config": {"message": "hi", "level": "debug"}}],
            )
            for i in range(count)
        ]
        s.add_all(flows)
        s.flush()
        triggers = [Trigger(workflow_id=w.id, name="t", type="interval", spec={"seconds": 1}) for w in flows]
        s.add_all(triggers)
        s.flush()
        return [(w.id, w.name, t.id) for w, t in zip(flows, triggers, strict=True)]


def run(
    quick: bool = False, rounds: int | None = None, n: int | None = None, concurrency: int = DEFAULT_CONCURRENCY
) -> dict[str, Any]:
    n = (1000 if quick else 4000) if n is None else n
    require(n > 0, f"exec: {n} messages per round asked for: no work to measure")
    require(concurrency > 0, f"exec: {concurrency} worker processes asked for: nothing would run")
    rounds = rounds or (2 if quick else 3)
    log_dir = Path(tempfile.mkdtemp(prefix="woow-bench-"))
    with scratch_stores("woow_bench", queue="bench", log_level="WARNING") as (settings, db, client):
        pairs = seed_workflows(db)
        app = get_app(settings)
        bare_rates: list[float] = []
        exec_rates: list[float] = []
        published = fired = 0  # fires published (each its own scheduled_for) / fires a worker did
        for r in range(rounds):
            order = ("bare", "exec") if r % 2 == 0 else ("exec", "bare")
            for kind in order:
                if kind == "bare":
                    _publish_noops(app, settings, n)
                    bare_rates.append(_drain_rate(client, settings, n, log_dir, f"bare{r}", concurrency=concurrency)[0])
                else:
                    _publish_fires(app, settings, pairs, n, published)
                    published += n
                    per_s, done_now = _drain_rate(client, settings, n, log_dir, f"exec{r}", concurrency=concurrency)
                    exec_rates.append(per_s)
                    fired += done_now  # a fire given back and removed never ran
                    # every fire a worker took must have left its row (ran or skipped)
                    done = _finished(db)
                    require(done == fired, f"exec{r}: {done} of {fired} fires left a finished execution row")
            print(
                f"exec_bench: round {r + 1}/{rounds}: bare {bare_rates[-1]:.1f}/s, exec {exec_rates[-1]:.1f}/s, "
                f"ratio {exec_rates[-1] / bare_rates[-1]:.3f}",
                file=sys.stderr,
                flush=True,
            )
        with db.session() as s:
            counts = dict(s.execute(select(Execution.status, func.count()).group_by(Execution.status)).all())
        db.dispose()
        app.close()
        succeeded = int(counts.get(ExecutionStatus.SUCCEEDED, 0))
        bare, execs = statistics.median(bare_rates), statistics.median(exec_rates)
        pairs_of_rates = list(zip(bare_rates, exec_rates, strict=True))
        return {
            "messages": n * rounds,
            "rounds": rounds,
            "concurrency": concurrency,
            "exec_per_s": round(execs, 1),
            "bare_celery_per_s": round(bare, 1),
            "ratio": round(execs / bare, 3),
            "median_round_ratio": round(statistics.median(e / b for b, e in pairs_of_rates), 3),
            "round_rates": [
                {"bare_per_s": round(b, 1), "exec_per_s": round(e, 1), "ratio": round(e / b, 3)}
                for b, e in pairs_of_rates
            ],
            "succeeded": succeeded,
            "skipped": int(counts.get(ExecutionStatus.SKIPPED, 0)),
            "target_ratio": 0.6,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3, quick 2)")
    parser.add_argument("--n", type=int, default=None, help="messages per round (default 4000, quick 1000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"pool processes of both the bare and the woow worker (default {DEFAULT_CONCURRENCY}, as shipped)",
    )
    args = parser.parse_args()
    try:
        check_one_source()
        result = run(args.quick, args.rounds, args.n, args.concurrency)
    except NoWork as exc:
        print(f"exec_bench: no figure: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"bare celery no-op : {result['bare_celery_per_s']:8.1f} tasks/s  (median of {result['rounds']} rounds, "
        f"{result['concurrency']} processes per worker)"
    )
    print(
        f"woow executions   : {result['exec_per_s']:8.1f} exec/s  ({result['succeeded']} succeeded, "
        f"{result['skipped']} skipped of {result['messages']})"
    )
    print(f"ratio             : {result['ratio']:.3f}  (target >= {result['target_ratio']}; median rates)")
    print(f"median round ratio: {result['median_round_ratio']:.3f}")
    for i, rr in enumerate(result["round_rates"], 1):
        print(f"  round {i}: bare {rr['bare_per_s']:8.1f}/s  exec {rr['exec_per_s']:8.1f}/s  ratio {rr['ratio']:.3f}")
    print(f"server            : {PG_SERVER_URL.rsplit('@', 1)[-1]}")


if __name__ == "__main__":
    main()
