"""Beat's plain-dict payload and the validated model are one wire contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from woow_scheduler.messaging.payload import PAYLOAD_VERSION, FirePayload, fire_kwargs, shadow_name
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
