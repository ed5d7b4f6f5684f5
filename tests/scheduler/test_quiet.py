"""The maintenance thread's work waits for a gap between beat's passes (``WoowScheduler.wait_quiet``),
and is never starved by a beat that is always about to pass."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from woow_scheduler.scheduler.beat import MAINTENANCE_BATCH
from woow_scheduler.scheduler.sync import Reconciler

from .conftest import MakeTrigger
from .test_beat import MakeScheduler


def _leader(sch: object) -> None:
    sch._beat_lock = SimpleNamespace(held=True, release=lambda: None)  # type: ignore[attr-defined]


def _timed(call: object) -> float:
    t0 = time.monotonic()
    call()  # type: ignore[operator]
    return time.monotonic() - t0


def test_with_the_next_pass_far_away_maintenance_goes_on_at_once(make_scheduler: MakeScheduler) -> None:
    sch = make_scheduler()
    _leader(sch)
    sch._next_pass = time.time() + 5
    assert _timed(lambda: sch.wait_quiet(need=0.15, limit=2.0)) < 0.1


def test_a_standby_beat_never_waits(make_scheduler: MakeScheduler) -> None:
    sch = make_scheduler()
    sch._busy = True
    assert _timed(lambda: sch.wait_quiet(need=0.15, limit=2.0)) < 0.1


def test_maintenance_waits_past_a_pass_that_is_about_to_start(make_scheduler: MakeScheduler) -> None:
    sch = make_scheduler()
    _leader(sch)
    soon = time.time() + 0.3
    sch._next_pass = soon
    passed: list[float] = []

    def a_pass() -> None:  # what tick does: busy while it runs, then the time of the next pass
        time.sleep(max(0.0, soon - time.time()))
        sch._busy = True
        time.sleep(0.05)
        sch._next_pass = time.time() + 5
        sch._busy = False
        passed.append(time.time())

    beat = threading.Thread(target=a_pass)
    beat.start()
    sch.wait_quiet(need=0.5, limit=3.0)
    done = time.time()
    beat.join()
    assert passed and done >= passed[0]  # not inside the gap that was too short, nor during the pass
    assert done - passed[0] < 0.5


def test_a_beat_that_stopped_ticking_or_closes_never_holds_maintenance_back(make_scheduler: MakeScheduler) -> None:
    sch = make_scheduler()
    _leader(sch)
    sch._next_pass = time.time() - 1  # its pass is long overdue: it is not ticking
    assert _timed(lambda: sch.wait_quiet(need=0.15, limit=2.0)) < 0.1
    sch._next_pass = time.time() + 0.05
    sch._closing = True
    assert _timed(lambda: sch.wait_quiet(need=0.15, limit=2.0)) < 0.1


def test_a_beat_always_busy_holds_maintenance_back_only_for_the_limit(make_scheduler: MakeScheduler) -> None:
    sch = make_scheduler()
    _leader(sch)
    sch._busy = True
    waited = _timed(lambda: sch.wait_quiet(need=0.15, limit=0.3))
    assert 0.25 <= waited < 1.5


def test_a_reconcile_pauses_before_each_batch(make_trigger: MakeTrigger, reconciler: Reconciler) -> None:
    for _ in range(3):
        make_trigger({"type": "cron", "expression": "0 * * * *"})
    calls: list[float] = []
    reconciler.batch_size = 1
    reconciler.pause = lambda: calls.append(time.monotonic())
    report = reconciler.full()
    assert report.added == 3
    assert len(calls) == 3  # one wait per batch of one row
    assert MAINTENANCE_BATCH <= 500  # (beat's batches: tens of ms of Python, each inside one gap)


def test_a_leading_beat_runs_the_full_garbage_collection_between_passes(make_scheduler: MakeScheduler) -> None:
    import gc

    from woow_scheduler.scheduler import beat

    before = gc.get_threshold()
    sch = make_scheduler()
    _leader(sch)
    try:
        assert sch._collect_garbage(0.5) == 0.5
        assert gc.get_threshold() == before  # no fires sent lately: the interpreter's own collection
        sch._last_fired = time.monotonic()
        assert sch._collect_garbage(0.5) == 0.5  # turned off the automatic one, nothing due yet
        assert gc.get_threshold()[2] == beat.GC_NEVER
        sch._gc_last_full -= beat.GC_FULL_EVERY
        for _ in range(beat._GC_OLDEST):  # as many middle-generation collections as the interpreter waits for
            gc.collect(1)
        collected = gc.get_stats()[2]["collections"]
        assert sch._collect_garbage(0.01) == 0.01  # too close to the next pass: not now
        assert gc.get_stats()[2]["collections"] == collected
        left = sch._collect_garbage(0.5)  # a gap: collected there, the wait shortened by its time
        assert gc.get_stats()[2]["collections"] == collected + 1
        assert 0.0 <= left <= 0.5
    finally:
        sch.close()
    assert gc.get_threshold() == before  # restored
