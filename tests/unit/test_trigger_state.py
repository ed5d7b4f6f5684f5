"""The one writer of a trigger's schedule state, on plain rows (no database: the transitions are pure)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from woow_scheduler.db import Trigger, trigger_state
from woow_scheduler.enums import TriggerState
from woow_scheduler.errors import InvalidInput
from woow_scheduler.triggers import AnySpec, parse_trigger_spec

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def once(at: datetime) -> AnySpec:
    return parse_trigger_spec({"type": "once", "run_at": at.isoformat()}, now=NOW, allow_past=True)


def row(state: TriggerState, previous: datetime | None = None) -> Trigger:
    tr = Trigger(workflow_id=uuid.uuid4(), name="t", state=state, previous_fire_time=previous, version=3,
                 fire_count=1 if previous else 0, anchor_at=NOW - timedelta(days=1))
    return tr


def test_a_new_trigger_is_normal_with_a_fire_ahead_and_complete_without() -> None:
    ahead, past = Trigger(workflow_id=uuid.uuid4(), name="a"), Trigger(workflow_id=uuid.uuid4(), name="b")
    trigger_state.place_new(ahead, once(NOW + timedelta(hours=1)), NOW)
    trigger_state.place_new(past, once(NOW - timedelta(hours=1)), NOW)
    assert (ahead.state, ahead.next_fire_time, ahead.anchor_at) == (TriggerState.NORMAL, NOW + timedelta(hours=1), NOW)
    assert (past.state, past.next_fire_time) == (TriggerState.COMPLETE, None)


def test_a_new_spec_revives_a_completed_trigger_and_completes_an_exhausted_one() -> None:
    done = row(TriggerState.COMPLETE, previous=NOW - timedelta(hours=2))
    trigger_state.respecify(done, once(NOW + timedelta(minutes=5)), NOW)
    assert (done.state, done.next_fire_time, done.fire_count, done.version) == (
        TriggerState.NORMAL, NOW + timedelta(minutes=5), 1, 4)
    assert done.previous_fire_time == NOW - timedelta(hours=2) and done.anchor_at == NOW

    live = row(TriggerState.NORMAL)
    trigger_state.respecify(live, once(NOW - timedelta(minutes=5)), NOW)
    assert (live.state, live.next_fire_time) == (TriggerState.COMPLETE, None)

    paused = row(TriggerState.PAUSED)
    trigger_state.respecify(paused, once(NOW + timedelta(minutes=5)), NOW)
    assert paused.state == TriggerState.PAUSED


def test_a_time_that_already_fired_never_comes_back() -> None:
    fired = row(TriggerState.COMPLETE, previous=NOW + timedelta(minutes=10))  # clock skew: fired "later"
    trigger_state.respecify(fired, once(NOW + timedelta(minutes=5)), NOW)
    assert (fired.state, fired.next_fire_time) == (TriggerState.COMPLETE, None)


def test_pause_and_resume_follow_the_allowed_transitions() -> None:
    tr = row(TriggerState.NORMAL)
    spec = once(NOW + timedelta(hours=1))
    assert trigger_state.set_state(tr, TriggerState.PAUSED, spec, NOW) and tr.state == TriggerState.PAUSED
    assert not trigger_state.set_state(tr, TriggerState.PAUSED, spec, NOW)  # already paused: no change
    assert trigger_state.set_state(tr, TriggerState.NORMAL, spec, NOW)
    assert (tr.state, tr.anchor_at, tr.next_fire_time) == (TriggerState.NORMAL, NOW, NOW + timedelta(hours=1))
    stale = row(TriggerState.PAUSED)
    trigger_state.set_state(stale, TriggerState.NORMAL, once(NOW - timedelta(hours=1)), NOW)
    assert stale.state == TriggerState.COMPLETE
    with pytest.raises(InvalidInput, match="state: trigger 't' is COMPLETE; it cannot become PAUSED"):
        trigger_state.set_state(stale, TriggerState.PAUSED, spec, NOW)
    with pytest.raises(InvalidInput, match="state: a trigger cannot be set to COMPLETE by hand"):
        trigger_state.set_state(tr, TriggerState.COMPLETE, spec, NOW)


def test_a_replan_revives_or_completes_and_marks_the_row_changed() -> None:
    done = row(TriggerState.COMPLETE)
    trigger_state.replan(done, once(NOW + timedelta(hours=1)), NOW, None)
    assert (done.state, done.next_fire_time, done.updated_at, done.version) == (
        TriggerState.NORMAL, NOW + timedelta(hours=1), NOW, 4)
