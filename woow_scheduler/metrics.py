"""Prometheus metrics exported by the beat and worker processes themselves (``--metrics-port``).

Off by default.  ``woow beat --metrics-port 9808`` and ``woow worker --metrics-port 9809`` serve
``/metrics`` on that port (``WOOW_METRICS_PORT``, address ``WOOW_METRICS_ADDRESS``).  Every metric
name is declared once, in :data:`METRICS`: docs/operations.md lists them, the Grafana dashboard
in ``deploy/`` is built on them and a test checks that every name the dashboard uses is served.

Prefork-safe: a worker's pool children count into prometheus_client's multiprocess files
(``PROMETHEUS_MULTIPROC_DIR``; ``woow worker --metrics-port`` makes a fresh one), and the worker's
main process serves their sum.  Beat is one process with a registry of its own.

The worker side reads what Celery already says about each task (its result's ``outcome``, its
retries and their reason) through Celery's signals, connected in :func:`install` (called by the
app factory), so the worker's code needs no metrics calls; takeovers are counted from the worker's
own "took over a stale execution" log record.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from .settings import Settings

log = logging.getLogger("woow.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 15.0, 60.0, 300.0)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
RECONCILE_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)


@dataclass(frozen=True)
class MetricDef:
    """One exported series family: its name as scraped (counters end in ``_total``)."""

    name: str
    kind: str  # counter, gauge, histogram
    processes: tuple[str, ...]  # which of beat, worker, api serve it
    labels: tuple[str, ...]
    help: str


METRICS: tuple[MetricDef, ...] = (
    # -- beat (the active one publishes; standbys export leadership 0) ------------------------
    MetricDef("woow_beat_fires_published_total", "counter", ("beat",), ("trigger_type",),
              "Fires published to the broker, by trigger type (cron, interval, once)."),
    MetricDef("woow_beat_publish_failures_total", "counter", ("beat",), (),
              "Fires whose publish failed (retried on the next tick)."),
    MetricDef("woow_beat_publish_lateness_seconds", "histogram", ("beat",), (),
              "Publish time minus the fire's nominal time (scheduled_for)."),
    MetricDef("woow_beat_misfires_total", "counter", ("beat",), ("policy",),
              "Fires found later than their misfire threshold, by the misfire policy applied."),
    MetricDef("woow_beat_leader", "gauge", ("beat",), (), "1 while this beat holds the beat lock, else 0."),
    MetricDef("woow_beat_lock_age_seconds", "gauge", ("beat",), (),
              "Seconds since this beat last renewed the beat lock (0 when not the leader); near "
              "WOOW_BEAT_LOCK_TIMEOUT means a standby is about to take over."),
    MetricDef("woow_beat_reconcile_duration_seconds", "histogram", ("beat",), ("kind",),
              "Duration of PostgreSQL -> RedBeat reconciles (kind full or incremental)."),
    MetricDef("woow_beat_reconcile_drift_total", "counter", ("beat",), ("action",),
              "RedBeat entries a reconcile had to fix: added, updated, removed."),
    MetricDef("woow_beat_redbeat_entries", "gauge", ("beat",), (), "Entries in the RedBeat schedule (read at scrape)."),
    MetricDef("woow_beat_sweeper_republished_total", "counter", ("beat",), (),
              "Fires published again by the sweeper (journaled, no execution row) or re-sent by the reaper "
              "(a queued row whose message never came)."),
    MetricDef("woow_queue_depth", "gauge", ("beat", "api"), ("queue",),
              "Messages waiting in the Celery queue (read at scrape, by beat and by the API)."),
    # -- worker --------------------------------------------------------------------------------
    MetricDef("woow_worker_executions_total", "counter", ("worker",), ("outcome",),
              "Deliveries handled, by outcome: succeeded, failed, timed_out, skipped, duplicate, dropped, "
              "lost (its outcome was not recorded: another worker took the run over), lock_lost (the run stopped "
              "when its lease was gone)."),
    MetricDef("woow_worker_run_duration_seconds", "histogram", ("worker",), (),
              "Duration of the deliveries that ran a workflow (claim to recorded outcome)."),
    MetricDef("woow_worker_retries_total", "counter", ("worker",), ("reason",),
              "Task retries by reason: lock (a queue-policy fire waits for the lock), failed (a failed "
              "attempt with retries left), running (a redelivery while the run may be alive), other."),
    MetricDef("woow_worker_takeovers_total", "counter", ("worker",), (),
              "Stale executions (their worker died) taken over by a redelivered fire."),
    MetricDef("woow_worker_lost_locks_total", "counter", ("worker",), (),
              "Runs that lost their lock: outcome lost or lock_lost."),
    # -- API (read from the stores at scrape; see woow_scheduler/api/metrics.py) ---------------
    MetricDef("woow_executions", "gauge", ("api",), ("status",), "Executions in the history by status."),
    MetricDef("woow_execution_duration_seconds", "histogram", ("api",), (), "Durations of finished executions."),
    MetricDef("woow_fire_lateness_seconds", "histogram", ("api",), (),
              "Scheduled fires: enqueued_at - scheduled_for (0 for a fire beat prepared ahead: "
              "woow_beat_publish_lateness_seconds times beat's real write)."),
    MetricDef("woow_triggers", "gauge", ("api",), ("state",), "Triggers by state."),
    MetricDef("woow_store_up", "gauge", ("api",), ("store",), "1 when the store answered this scrape."),
)
BY_NAME = {m.name: m for m in METRICS}
LOST_OUTCOMES = frozenset({"lost", "lock_lost"})


def _base(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def _make(registry: Any, name: str, **kwargs: Any) -> Any:
    from prometheus_client import Counter, Gauge, Histogram

    d = BY_NAME[name]
    cls = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}[d.kind]
    return cls(_base(d.name), d.help, list(d.labels), registry=registry, **kwargs)


class BeatMetrics:
    """The beat's series, in a registry of its own (served only with a metrics port)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.fires_published = _make(r, "woow_beat_fires_published_total")
        self.publish_failures = _make(r, "woow_beat_publish_failures_total")
        self.publish_lateness = _make(r, "woow_beat_publish_lateness_seconds", buckets=LATENESS_BUCKETS)
        self.misfires = _make(r, "woow_beat_misfires_total")
        self.leader = _make(r, "woow_beat_leader")
        self.lock_age = _make(r, "woow_beat_lock_age_seconds")
        self.reconcile_duration = _make(r, "woow_beat_reconcile_duration_seconds", buckets=RECONCILE_BUCKETS)
        self.reconcile_drift = _make(r, "woow_beat_reconcile_drift_total")
        self.redbeat_entries = _make(r, "woow_beat_redbeat_entries")
        self.sweeper_republished = _make(r, "woow_beat_sweeper_republished_total")
        self.queue_depth = _make(r, "woow_queue_depth")
        self._renewed_at: float | None = None
        self.lock_age.set_function(self._lock_age)
        # every known label value from the start: a series that appears late breaks rate() and alerts
        for kind in ("cron", "interval", "once"):
            self.fires_published.labels(trigger_type=kind)
        for policy in ("fire_once_now", "skip", "fire_all"):
            self.misfires.labels(policy=policy)
        for kind in ("full", "incremental"):
            self.reconcile_duration.labels(kind=kind)
        for action in ("added", "updated", "removed"):
            self.reconcile_drift.labels(action=action)

    # -- hooks the scheduler calls ---------------------------------------------------------------
    def published(self, trigger_type: str, lateness_s: float) -> None:
        self.fires_published.labels(trigger_type=trigger_type or "unknown").inc()
        self.publish_lateness.observe(max(0.0, lateness_s))

    def lock_renewed(self) -> None:
        self._renewed_at = time.monotonic()
        self.leader.set(1)

    def lock_lost(self) -> None:
        self._renewed_at = None
        self.leader.set(0)

    def reconciled(self, kind: str, seconds: float, added: int = 0, updated: int = 0, removed: int = 0) -> None:
        self.reconcile_duration.labels(kind=kind).observe(seconds)
        for action, n in (("added", added), ("updated", updated), ("removed", removed)):
            if n:
                self.reconcile_drift.labels(action=action).inc(n)

    def _lock_age(self) -> float:
        return 0.0 if self._renewed_at is None else time.monotonic() - self._renewed_at

    def watch_stores(self, entries: Callable[[], int], queue: str, depth: Callable[[], int | None]) -> None:
        """Series read at scrape time: RedBeat entries and the queue depth (errors read as absent)."""
        self.redbeat_entries.set_function(_guarded(entries))
        self.queue_depth.labels(queue=queue).set_function(_guarded(depth))

    def serve(self, port: int, address: str) -> None:
        from prometheus_client import start_http_server

        start_http_server(port, addr=address, registry=self.registry)
        log.info("beat: metrics on http://%s:%d/metrics", address or "0.0.0.0", port)


def _guarded(fn: Callable[[], int | None]) -> Callable[[], float]:
    def read() -> float:
        try:
            value = fn()
        except Exception as exc:  # a scrape reports, it never raises into the HTTP thread
            log.debug("metrics: store unreadable: %s", exc)
            return float("nan")
        return float("nan") if value is None else float(value)

    return read


# -- worker: Celery signals, prefork-safe -----------------------------------------------------------


class WorkerMetrics:
    """The worker's series; in multiprocess mode each process writes its own file, the main one serves."""

    def __init__(self) -> None:
        self.executions = _make(None, "woow_worker_executions_total")
        self.run_duration = _make(None, "woow_worker_run_duration_seconds", buckets=DURATION_BUCKETS)
        self.retries = _make(None, "woow_worker_retries_total")
        self.takeovers = _make(None, "woow_worker_takeovers_total")
        self.lost_locks = _make(None, "woow_worker_lost_locks_total")
        self._started: dict[str, float] = {}
        for outcome in ("succeeded", "failed", "timed_out", "skipped", "duplicate", "dropped", "lost", "lock_lost"):
            self.executions.labels(outcome=outcome)
        for reason in ("lock", "failed", "running", "other"):
            self.retries.labels(reason=reason)

    def task_started(self, task_id: str) -> None:
        self._started[task_id] = time.monotonic()

    def task_done(self, task_id: str, retval: Any) -> None:
        t0 = self._started.pop(task_id, None)
        if not isinstance(retval, dict) or "outcome" not in retval:
            return  # a retry or an exception: counted by their own signals
        outcome = str(retval["outcome"])
        self.executions.labels(outcome=outcome).inc()
        if outcome in LOST_OUTCOMES:
            self.lost_locks.inc()
        ran = "attempt" in retval or outcome in LOST_OUTCOMES
        if ran and t0 is not None:
            self.run_duration.observe(time.monotonic() - t0)

    def task_retried(self, task_id: str, reason: Any) -> None:
        t0 = self._started.pop(task_id, None)
        sig = getattr(reason, "sig", None)
        why = str((getattr(sig, "options", None) or {}).get("reason") or "other")
        why = why if why in {"lock", "failed", "running"} else "other"
        self.retries.labels(reason=why).inc()
        if why == "failed" and t0 is not None:  # a failed attempt ran the workflow
            self.run_duration.observe(time.monotonic() - t0)


class _TakeoverCounter(logging.Handler):
    def __init__(self, metrics: WorkerMetrics) -> None:
        super().__init__(logging.WARNING)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("took over a stale execution"):
            self.metrics.takeovers.inc()


_lock = threading.Lock()
_installed: dict[str, Any] = {}


def prepare_multiprocess_dir(env: dict[str, str] | os._Environ[str]) -> str:
    """A fresh directory for the worker's per-process metric files, named in ``env``.

    A directory given by the operator is emptied (stale files from an earlier run would be summed).
    """
    given = env.get(MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        return str(path)
    path_s = tempfile.mkdtemp(prefix="woow-metrics-")
    env[MULTIPROC_ENV] = path_s
    return path_s


def install(app: Celery, settings: Settings) -> None:
    """Connect the metrics hooks when a metrics port is set (once per process, whichever app asks)."""
    if settings.metrics_port is None:
        return
    with _lock:
        if _installed.get("settings") is not None:
            return
        _installed["settings"] = settings
    from celery import signals

    signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid="woow-metrics-worker-init")
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="woow-metrics-worker-ready")
    signals.worker_process_shutdown.connect(_on_child_exit, weak=False, dispatch_uid="woow-metrics-child-exit")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="woow-metrics-prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="woow-metrics-postrun")
    signals.task_retry.connect(_on_retry, weak=False, dispatch_uid="woow-metrics-retry")


def _worker() -> WorkerMetrics:
    with _lock:
        metrics = _installed.get("worker")
        if metrics is None:
            metrics = _installed["worker"] = WorkerMetrics()
            logging.getLogger("woow.worker").addHandler(_TakeoverCounter(metrics))
        return metrics


def _on_worker_init(**_: Any) -> None:
    from prometheus_client import values

    if os.environ.get(MULTIPROC_ENV) is None or values.ValueClass.__name__ != "MultiProcessValue":
        log.warning(
            "worker metrics: %s is not set at start, so pool children's counts are not served; "
            "start workers with 'woow worker --metrics-port N'", MULTIPROC_ENV,
        )
    _worker()


def _on_worker_ready(**_: Any) -> None:
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    settings = _installed["settings"]
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:  # solo/threads pool started without the directory: this process's own counts
        from prometheus_client import REGISTRY

        registry = REGISTRY
    start_http_server(settings.metrics_port, addr=settings.metrics_address, registry=registry)
    log.info("worker: metrics on http://%s:%d/metrics", settings.metrics_address, settings.metrics_port)


def _on_child_exit(pid: int | None = None, **_: Any) -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


def _on_prerun(task_id: str = "", **_: Any) -> None:
    _worker().task_started(task_id)


def _on_postrun(task_id: str = "", retval: Any = None, **_: Any) -> None:
    _worker().task_done(task_id, retval)


def _on_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    _worker().task_retried(str(getattr(request, "id", "") or ""), reason)
