"""Beat's plain-dict payload and the validated model are one wire contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from woow_scheduler.messaging.payload import PAYLOAD_VERSION, FirePayload, describe_error, fire_kwargs, shadow_name
from woow_scheduler.messaging.publish import publish_options
from woow_scheduler.settings import Settings


def test_beat_kwargs_are_what_the_model_sends_and_accepts() -> None:
    wf, tr = uuid.uuid4(), uuid.uuid4()
    when, now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC), datetime(2026, 3, 1, 9, 0, 1, tzinfo=UTC)
    entry = {"workflow_id": str(wf), "trigger_id": str(tr), "user_id": "ann"}
    beat = fire_kwargs(entry, when.isoformat(), now.isoformat())
    model = FirePayload(workflow_id=wf, trigger_id=tr, user_id="ann", scheduled_for=when, enqueued_at=now)
    assert beat == model.to_kwargs()
    assert FirePayload.model_validate(beat) == model
    assert beat["version"] == PAYLOAD_VERSION == 1


def test_the_shadow_name_is_the_publish_options_one() -> None:
    assert shadow_name("nightly") == "workflow:nightly"
    assert publish_options(Settings(), workflow_name="nightly")["shadow"] == "workflow:nightly"


def test_the_fire_marks_are_version_2_and_sent_only_when_set() -> None:
    wf, tr = uuid.uuid4(), uuid.uuid4()
    when, now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC), datetime(2026, 3, 1, 9, 0, 1, tzinfo=UTC)
    entry = {"workflow_id": str(wf), "trigger_id": str(tr), "user_id": None}
    # beat's jittered fire and the model agree, and say version 2 (a version-1 worker refuses it)
    beat = fire_kwargs(entry, when.isoformat(), now.isoformat(), jitter_ms=1234)
    model = FirePayload(workflow_id=wf, trigger_id=tr, scheduled_for=when, enqueued_at=now, jitter_ms=1234)
    assert beat == model.to_kwargs() and beat["version"] == 2 and beat["jitter_ms"] == 1234
    assert FirePayload.model_validate(beat) == model.model_copy(update={"version": 2})
    backfill = FirePayload(workflow_id=wf, trigger_id=tr, scheduled_for=when, backfill=True).to_kwargs()
    assert backfill["backfill"] is True and backfill["version"] == 2 and "jitter_ms" not in backfill
    # an ordinary fire has neither field and stays version 1: workers of either version run it
    plain = fire_kwargs(entry, when.isoformat(), now.isoformat())
    assert "backfill" not in plain and "jitter_ms" not in plain and plain["version"] == 1
    # a payload written before version 2 existed is still valid, unmarked
    old = {"workflow_id": str(wf), "trigger_id": str(tr), "user_id": None, "scheduled_for": when.isoformat(),
           "version": 1, "enqueued_at": now.isoformat()}  # fmt: skip
    parsed = FirePayload.model_validate(old)
    assert parsed.backfill is False and parsed.jitter_ms is None
    # what a retry re-sends keeps the marks
    assert FirePayload.model_validate(backfill).to_kwargs() == backfill


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"jitter_ms": -1}, "jitter_ms: Input should be greater than or equal to 0"),
        ({"backfill": "maybe"}, "backfill: Input should be a valid boolean"),
        ({"version": 3}, "unknown payload version 3"),
    ],
)
def test_bad_fire_marks_name_the_field(extra: dict[str, object], message: str) -> None:
    data = {"workflow_id": str(uuid.uuid4()), "trigger_id": str(uuid.uuid4()),
            "scheduled_for": "2026-03-01T09:00:00+00:00", **extra}  # fmt: skip
    with pytest.raises(ValidationError) as err:
        FirePayload.model_validate(data)
    assert message in describe_error(err.value)  # the one line the worker logs


def test_a_manual_run_cannot_carry_fire_marks() -> None:
    with pytest.raises(ValidationError, match="backfill and jitter_ms belong to a trigger fire"):
        FirePayload(workflow_id=uuid.uuid4(), backfill=True)
