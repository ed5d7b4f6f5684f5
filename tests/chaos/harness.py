"""A scenario's world: its own Redis and PostgreSQL, real beat and worker processes, a trigger load.

    env.load(n=20, min_period=2, max_period=5)     # workflows + triggers through the Service
    beat = env.beat("a"); env.worker("w1")
    t0 = env.now(); ...inject the fault...; t1 = env.now()
    env.stop_beats(); env.settle(...)               # every expected fire final (or explained)
    tally = env.classify(t0, t1, scenario=..., size=..., faults=[...])
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import redis

from tests.chaos import accounting as acc
from tests.support.procs import BEAT_READY, WORKER_READY, CeleryProcess, worker_args
from tests.support.servers import RedisServer, ThrowawayPostgres
from woow_scheduler.db import Database
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.keys import Keys
from woow_scheduler.scheduler.sync import full_sync
from woow_scheduler.service import Service
from woow_scheduler.settings import Settings, load_settings

JOURNAL = "tests.chaos.callables:journal"
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Sydney", "America/Sao_Paulo")


@dataclass(frozen=True)
class Size:
    """One size of a scenario: ``full`` (marker chaos) or ``reduced`` (marker slow, in make test)."""

    name: str
    triggers: int
    window: float  # seconds of load, fault included
    outage: float = 0.0  # seconds a store stays down
    faults: int = 1  # how many times the fault is injected
    min_period: int = 1  # trigger periods (seconds), where a scenario draws them per size
    max_period: int = 5
    warmup: float = 0.0  # seconds before the first memory sample (soak)


def utcnow() -> datetime:
    return datetime.now(UTC)


def second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


class ChaosEnv:
    """Servers, settings, processes and trigger load of one scenario; ``close()`` stops every process."""

    def __init__(self, pg: ThrowawayPostgres, redis_server: RedisServer, tmp: Path) -> None:
        self.pg = pg
        self.redis_server = redis_server
        self.tmp = tmp
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.journal = tmp / "journal.jsonl"
        self.settings = self.make_settings()
        self.db = Database(pg.url)
        upgrade(self.db)
        self.keys = Keys(self.settings.key_prefix)
        self.procs: list[CeleryProcess] = []
        self.trigger_ids: list[uuid.UUID] = []
        self.rng = random.Random(7)

    # -- settings and processes ----------------------------------------------------------------
    def make_settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": self.pg.url,
            "redis_url": self.redis_server.url,
            "key_prefix": "chaos:",
            "queue": "chaos",
            "beat_lock_timeout": 5.0,
            "lock_ttl": 4.0,
            "visibility_timeout": 10,
            "reconcile_interval": 2.0,
            "full_reconcile_interval": 60.0,
            "heartbeat_interval": 1.0,
            "bookkeeping_interval": 0.5,
            "db_retry_max": 30,
            "max_queue_wait": 30.0,
            "python_callables": [JOURNAL],
            "log_level": "INFO",
        }
        values.update(overrides)
        return load_settings(**values)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True, socket_timeout=5)

    def _start(self, proc: CeleryProcess, timeout: float = 40.0) -> CeleryProcess:
        self.procs.append(proc)
        proc.start().wait_ready(timeout)
        return proc

    def beat(self, name: str, settings: Settings | None = None) -> CeleryProcess:
        s = settings or self.settings
        proc = CeleryProcess(
            "beat",
            s,
            ["-l", "INFO", "-s", str(self.log_dir / f"beat-{name}-schedule")],
            log_path=self.log_dir / f"beat-{name}.log",
            ready=BEAT_READY,
        )
        return self._start(proc)

    def worker(
        self,
        name: str,
        concurrency: int = 2,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CeleryProcess:
        """A worker; ``env`` adds variables (e.g. ``CELERY_BROKER_WRITE_URL``: its publishes elsewhere)."""
        s = settings or self.settings
        proc = CeleryProcess(
            "worker",
            s,
            worker_args(concurrency, name=name, loglevel="INFO"),
            log_path=self.log_dir / f"worker-{name}.log",
            env=env,
            ready=WORKER_READY,
        )
        return self._start(proc)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.kill9()
        self.db.dispose()

    def logs(self) -> str:
        return "\n".join(f"== {p.log_path.name}\n{p.log()[-3000:]}" for p in self.procs)

    # -- load ----------------------------------------------------------------------------------
    def load(
        self,
        n: int,
        *,
        min_period: int,
        max_period: int,
        workflows: int | None = None,
        kinds: Sequence[str] = ("cron", "interval"),
        step_seconds: float | tuple[float, float] = 0.0,
        allow_share: float = 0.0,
        overrides: Mapping[str, Any] | None = None,
        mixed_misfire: bool = False,
        horizon: float = 60.0,
        pre_sleep: float = 0.0,
    ) -> list[uuid.UUID]:
        """``n`` triggers over ``workflows`` workflows (default: one each), written through the Service.

        Periods are drawn from [min_period, max_period] seconds; cron triggers use Quartz second/minute
        steps in assorted time zones, interval triggers start a few seconds from now, once triggers
        fire within ``horizon`` seconds.  ``mixed_misfire`` cycles every trigger through the three
        misfire policies with a 2 s threshold for half of them; ``overrides`` go into every spec.
        ``pre_sleep`` puts a plain ``sleep`` step of that many seconds before the journal step.
        """
        rng = self.rng
        svc = Service(self.db, self.settings)
        n_wf = workflows or n
        wf_ids = []
        for i in range(n_wf):
            secs = step_seconds if isinstance(step_seconds, float | int) else rng.uniform(*step_seconds)
            view = svc.create_workflow(
                {
                    "name": f"chaos-{i:04d}-{uuid.uuid4().hex[:4]}",
                    "steps": (
                        [{"name": "pause", "type": "sleep", "config": {"seconds": pre_sleep}}] if pre_sleep else []
                    )
                    + [
                        {
                            "name": "journal",
                            "type": "python",
                            "config": {
                                "callable": JOURNAL,
                                "pass_context": True,
                                "kwargs": {"path": str(self.journal), "seconds": round(secs, 3)},
                            },
                        }
                    ],
                    "concurrency": "allow" if rng.random() < allow_share else "forbid",
                }
            )
            wf_ids.append(view.id)
        now = second(utcnow())
        ids = []
        for i in range(n):
            kind = kinds[i % len(kinds)]
            zone = ZONES[i % len(ZONES)]
            period = rng.randint(min_period, max_period)
            spec: dict[str, Any] = {"type": kind, "timezone": zone}
            if kind == "cron":
                spec["expression"] = _cron_every(period, rng)
            elif kind == "interval":
                spec["every"] = period
                start = (now + timedelta(seconds=rng.randint(2, max(2, period)))).astimezone(_zone(zone))
                spec["start_at"] = start.isoformat()
            else:
                at = second(utcnow()) + timedelta(seconds=rng.uniform(5, horizon))  # creating many takes time
                spec["run_at"] = at.replace(microsecond=0).isoformat()
            if mixed_misfire:
                policy = ("fire_once_now", "skip", "fire_all")[i % 3]
                spec["misfire_policy"] = policy
                spec["misfire_threshold"] = 2 if (i // 3) % 2 == 0 else 60
            if overrides:
                spec.update(overrides)
            view = svc.add_trigger(str(wf_ids[i % n_wf]), spec, name=f"t{i:05d}")
            ids.append(view.id)
        self.trigger_ids.extend(ids)
        full_sync(self.settings, db=self.db)
        return ids

    # -- observation -----------------------------------------------------------------------------
    def triggers(self) -> list[acc.TriggerInfo]:
        return acc.load_triggers(self.db, self.trigger_ids)

    def leader_pid(self) -> int | None:
        try:
            client = self.redis()
            try:
                pid = client.hget(self.keys.beat_state, "pid")
            finally:
                client.close()
        except redis.RedisError:
            return None
        return int(pid) if pid else None

    def settle(self, t0: datetime, t1: datetime, faults: Sequence[acc.Fault] = (), timeout: float = 90.0) -> float:
        """Wait until every expected fire of (t0, t1] is final or explained; returns the seconds waited."""
        triggers = self.triggers()
        start = time.monotonic()
        left = -1
        while time.monotonic() - start < timeout:
            left = acc.pending(self.db, triggers, t0, t1, faults)
            if left == 0:
                break
            time.sleep(0.5)
        time.sleep(0.5)  # let a journal write that raced the last status change land
        return time.monotonic() - start

    def classify(
        self,
        t0: datetime,
        t1: datetime,
        *,
        scenario: str,
        size: str,
        faults: Sequence[acc.Fault] = (),
        kills: Sequence[float] = (),
    ) -> acc.Tally:
        return acc.classify(
            self.db,
            self.triggers(),
            t0,
            t1,
            scenario=scenario,
            size=size,
            journal=self.journal,
            faults=faults,
            kills=kills,
        )

    def rows(self) -> list[Any]:
        return acc.fetch_rows(self.db, self.trigger_ids)


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _cron_every(period: int, rng: random.Random) -> str:
    """A Quartz expression firing about every ``period`` seconds (second steps below a minute)."""
    if period < 60:
        step = next(s for s in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) if s >= period)
        if step == 60:
            return f"{rng.randrange(60)} * * * * ?"
        return f"{rng.randrange(step)}/{step} * * * * ?"
    minutes = next((m for m in (1, 2, 3, 4, 5, 6, 10, 15, 20, 30) if m * 60 >= period), 30)
    return f"{rng.randrange(60)} {rng.randrange(minutes)}/{minutes} * * * ?"


def tree_rss(proc: CeleryProcess) -> int:
    """Resident memory of a process and its children (bytes)."""
    try:
        main = psutil.Process(proc.pid)
        total = main.memory_info().rss
        for child in main.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return int(total)
    except psutil.Error:
        return 0


def sizes(full: Size, reduced: Size) -> list[Any]:
    """Parameters of a scenario: full size under ``chaos`` (make chaos), reduced under ``slow`` only (make test)."""
    import pytest

    return [
        pytest.param(full, marks=[pytest.mark.slow, pytest.mark.chaos], id="full"),
        pytest.param(reduced, marks=pytest.mark.slow, id="reduced"),
    ]
