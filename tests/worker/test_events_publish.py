"""Task events go out without waiting for Redis's answer, and still reach their subscribers."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
import redis

from woow_scheduler.messaging.broker import Channel
from woow_scheduler.settings import Settings
from woow_scheduler.worker import get_app


def _event_messages(sub: Any, want: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        msg = sub.get_message(timeout=0.2)
        if msg and msg["type"] == "pmessage" and "celeryev" in str(msg["channel"]):
            envelope = json.loads(msg["data"])
            got.append(json.loads(base64.b64decode(envelope["body"])))
    return got


def test_task_events_are_published_unanswered_and_delivered(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = get_app(settings)
    sub = redis_client.pubsub()
    sub.psubscribe("*celeryev*")
    sub.get_message(timeout=1.0)  # the psubscribe confirmation
    reads: list[str] = []
    real_read = redis.connection.AbstractConnection.read_response

    def counting_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(type(self).__name__)
        return real_read(self, *args, **kwargs)

    try:
        with app.events.default_dispatcher(hostname="w1@test") as dispatcher:
            channel = dispatcher.producer.channel
            assert isinstance(channel, Channel)
            client = channel.client
            dispatcher.send("task-received", uuid="task-0", name="t")  # connections made (their handshakes read)
            monkeypatch.setattr(redis.connection.AbstractConnection, "read_response", counting_read)
            for i in range(3):  # on the old transport: one answer read per event
                dispatcher.send("task-succeeded", uuid=f"task-{i}", result="'succeeded'", runtime=0.001)
            assert reads == []  # no answer waited for
            monkeypatch.undo()
            # the connection is still in step: the next command reads its own answer
            # (a stale answer, PUBLISH's count or an error, would come back here instead)
            for word in ("one", "two"):
                assert client.echo(word) in (word, word.encode())
        events = _event_messages(sub, 4)
    finally:
        sub.close()
        app.close()
    assert [(e["type"], e["uuid"]) for e in events] == [
        ("task-received", "task-0"),
        ("task-succeeded", "task-0"),
        ("task-succeeded", "task-1"),
        ("task-succeeded", "task-2"),
    ]
