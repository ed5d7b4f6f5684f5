"""Prepared dispatch: beat builds the next second's messages ahead and writes them at the due instant.

What must hold: a prepared message is exactly the message Celery builds; nothing goes out before
its second; an entry that changed after its messages were prepared (deleted, advanced by another
beat or a sync) is never published from the stale preparation.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from woow_scheduler.keys import Keys
from woow_scheduler.messaging.app import create_app
from woow_scheduler.messaging.broker import capture
from woow_scheduler.messaging.payload import TASK_EXECUTE, fire_kwargs
from woow_scheduler.messaging.publish import MARKS, FireSender, FireTemplate, publish_options
from woow_scheduler.scheduler.codec import encode_meta
from woow_scheduler.scheduler.sync import Reconciler
from woow_scheduler.settings import Settings

from .conftest import MakeTrigger, published
from .test_beat import MakeScheduler


def _normalized(commands: Any) -> dict[str, Any]:
    ((name, (_key, raw)),) = commands
    assert name == "lpush"
    msg = json.loads(raw)
    # fresh per message: the task id (also root id and correlation id) and kombu's delivery tag
    for key in ("id", "root_id"):
        msg["headers"][key] = None
    msg["properties"]["correlation_id"] = msg["properties"]["delivery_tag"] = None
    return dict(msg)


def test_the_fire_sender_builds_the_message_send_task_builds(settings: Settings) -> None:
    app = create_app(settings)
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn, auto_declare=False)
        kwargs = fire_kwargs({"workflow_id": "w", "trigger_id": "t", "user_id": "u"}, "2026-01-01T00:00:00+00:00", "x")
        eta = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
        for options in (
            publish_options(settings, workflow_name="nightly", timeout=30),
            {**publish_options(settings, workflow_name="n"), "eta": eta, "declare": []},
        ):
            with capture(producer) as sink:
                app.send_task(
                    TASK_EXECUTE,
                    args=[],
                    kwargs=kwargs,
                    producer=producer,
                    ignore_result=True,
                    argsrepr="()",
                    kwargsrepr=repr(kwargs),
                    **options,
                )
                FireSender(app).send(producer, TASK_EXECUTE, kwargs, dict(options), repr(kwargs))
            assert len(sink) == 2
            celery, ours = (_normalized(m) for m in sink)
            assert ours == celery
            assert ours["headers"]["shadow"] == options["shadow"]


def test_a_fire_template_renders_the_very_bytes_celery_builds(settings: Settings, monkeypatch: Any) -> None:
    """A template's message of a fire is Celery's message of that fire, byte for byte (given the
    same task id and delivery tag, which both make fresh for every message), for every trigger that
    shares the template and for one whose values must stay written in its own."""
    import woow_scheduler.messaging.publish as publish

    app = create_app(settings)
    task_id = "11111111-2222-4333-8444-555555555555"
    names = ("workflow_id", "trigger_id", "user_id")
    triggers = [  # (entry kwargs, workflow name)
        (
            {"workflow_id": "0b0e6c1e-5d43-4f7a-9b7e-7f2b9a1c2d3e", "trigger_id": "t-1", "user_id": "ann@x.io"},
            "nightly",
        ),
        ({"workflow_id": "w2", "trigger_id": "t-2", "user_id": "bob"}, "a b:c/d"),
        ({"workflow_id": "w3", "trigger_id": "t-3", "user_id": None}, "n"),
        ({"workflow_id": "w4", "trigger_id": "t-4", "user_id": 'Zoë "q"\''}, "né 'x'"),  # not plain: written
    ]
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn, auto_declare=False)
        sender = FireSender(app)
        for timeout in (30, None):
            base = {**publish_options(settings, workflow_name="x", timeout=timeout), "declare": []}
            for entry, workflow in triggers:
                options = {**base, "shadow": f"workflow:{workflow}"}
                values = [entry[n] for n in names] + [options["shadow"]]
                opened = [publish.plain(v) for v in values]
                marked = {n: MARKS[n] if o else entry[n] for n, o in zip(names, opened, strict=False)}
                with capture(producer) as sink:
                    opts = {**options, "shadow": MARKS["shadow"] if opened[3] else options["shadow"]}

                    def build(marked: dict[str, Any] = marked, opts: dict[str, Any] = opts) -> None:
                        kwargs = fire_kwargs(marked, MARKS["scheduled_for"], MARKS["enqueued_at"])
                        sender.send(producer, TASK_EXECUTE, kwargs, dict(opts), repr(kwargs))

                    template = FireTemplate.build(build, sink)
                    assert template is not None and sink == []
                    fill = [v if o else "" for v, o in zip(values, opened, strict=True)]
                    for sched, enq in (
                        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
                        ("2027-06-30T23:59:59+00:00", "2027-06-30T23:59:59.250001+00:00"),
                    ):
                        kwargs = fire_kwargs(entry, sched, enq)
                        monkeypatch.setattr(publish, "task_uuid", lambda: task_id)
                        sender.send(producer, TASK_EXECUTE, kwargs, dict(options), repr(kwargs))
                        monkeypatch.undo()
                        ((_, (key, raw)),) = sink.pop()
                        tag = json.loads(raw)["properties"]["delivery_tag"]
                        ours = template._render([task_id, tag, "", sched, enq, *fill])
                        assert ours == (("lpush", (key, raw)),)  # the very bytes
                        fresh = template.render(sched, enq, *fill)  # fresh ids: the same message otherwise
                        assert _normalized(fresh) == _normalized(((("lpush", (key, raw))),))
                        ids = json.loads(fresh[0][1][1])
                        assert ids["headers"]["id"] == ids["headers"]["root_id"] == ids["properties"]["correlation_id"]
                        assert ids["headers"]["id"] != ids["properties"]["delivery_tag"]


def test_the_triggers_of_a_burst_share_one_template(
    settings: Settings, make_scheduler: MakeScheduler, redis_client: redis.Redis
) -> None:
    sch = make_scheduler()
    options = publish_options(settings, workflow_name="x")
    fire = datetime(2026, 1, 1, tzinfo=UTC)
    jobs = [
        (
            {
                "task": TASK_EXECUTE,
                "kwargs": {"workflow_id": f"w{i}", "trigger_id": f"t{i}", "user_id": None},
                "options": {**options, "shadow": f"workflow:wf{i}"},
            },
            fire,
        )
        for i in range(5)
    ]
    assert sch._publish_all(jobs) == [None] * 5
    assert len(sch._templates) == 1  # (the first message declared the queue, built in full)
    queued = [json.loads(m) for m in redis_client.lrange(Keys(settings.key_prefix).broker_queue(settings.queue), 0, -1)]
    shadows = sorted(m["headers"]["shadow"] for m in queued)
    assert shadows == [f"workflow:wf{i}" for i in range(5)]
    tasks = {m["headers"]["id"] for m in queued}
    assert len(tasks) == 5


def test_a_message_the_template_cannot_rebuild_exactly_gets_no_template(settings: Settings) -> None:
    app = create_app(settings)
    with app.connection_for_write() as conn:
        producer = app.amqp.Producer(conn, auto_declare=False)
        with capture(producer) as sink:

            def two() -> None:  # not one message
                for _ in range(2):
                    kwargs = fire_kwargs({}, MARKS["scheduled_for"], MARKS["enqueued_at"])
                    FireSender(app).send(producer, TASK_EXECUTE, kwargs, {"queue": settings.queue}, repr(kwargs))

            assert FireTemplate.build(two, sink) is None
            assert sink == []


def _at(fire: dict[str, Any]) -> float:
    return datetime.fromisoformat(fire["scheduled_for"]).timestamp()


def _tick_until_prepared(sch: Any) -> None:
    """Tick and sleep as celery beat does until the scheduler holds a prepared second."""
    deadline = time.time() + 5
    while time.time() < deadline:
        wait = sch.tick()
        if sch._prepared and not sch._prepare_todo:
            return
        time.sleep(wait)
    raise AssertionError("nothing was prepared within 5 s")


def _sleep_into(second: int) -> None:
    time.sleep(max(0.0, second - time.time()) + 0.01)


def test_prepared_fires_go_out_in_their_second_exactly_as_prepared(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    t = make_trigger({"type": "cron", "expression": "* * * * * ?"}, updated_at=datetime.now(UTC))
    reconciler.triggers([t.id])
    sch = make_scheduler()
    _tick_until_prepared(sch)  # takes the lock, fires what is due, prepares the next second
    second = sch._prepared_second
    entry = sch._prepared.get(Keys(settings.key_prefix).redbeat_entry(t.id))
    assert entry is not None and [f.timestamp() for f in entry.plan.fires] == [second]
    sent_before = published(redis_client, settings)
    assert all(_at(f) < second for f in sent_before)
    assert time.time() < second  # prepared ahead, nothing of that second published yet

    _sleep_into(second)
    sch.tick()
    fires = [f for f in published(redis_client, settings) if _at(f) == second]
    assert len(fires) == 1
    assert fires[0]["enqueued_at"] == fires[0]["scheduled_for"]  # prepared: never says before its time
    (((_, (_, raw)),),) = entry.messages
    queued = redis_client.lrange(Keys(settings.key_prefix).broker_queue(settings.queue), 0, -1)
    assert raw in queued  # the very bytes prepared ahead


@pytest.mark.parametrize("chunk", [500, 1])  # 1: a pass of many chunks (reads sent ahead, fired writes in flight)
def test_an_entry_changed_after_preparation_is_not_sent_from_the_stale_preparation(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
    chunk: int,
) -> None:
    keys = Keys(settings.key_prefix)
    every_second = {"type": "cron", "expression": "* * * * * ?"}
    ids = [make_trigger(every_second, updated_at=datetime.now(UTC)).id for _ in range(3)]
    reconciler.triggers(ids)
    sch = make_scheduler(beat_dispatch_chunk=chunk)
    _tick_until_prepared(sch)
    second = sch._prepared_second
    assert {keys.redbeat_entry(i) for i in ids} <= set(sch._prepared)
    gone, advanced, kept = ids
    redis_client.delete(keys.redbeat_entry(gone))  # a sync removed it (trigger deleted or paused)
    at = datetime.fromtimestamp(second, UTC)  # another beat already published that second's fire
    redis_client.hset(keys.redbeat_entry(advanced), "meta", encode_meta(at, 99))
    redis_client.zadd(keys.redbeat_schedule, {keys.redbeat_entry(advanced): second + 1})
    before = len(published(redis_client, settings))

    _sleep_into(second)
    sch.tick()
    fires = published(redis_client, settings)[before:]
    of_second = [f for f in fires if datetime.fromisoformat(f["scheduled_for"]) == at]
    assert [f["trigger_id"] for f in of_second] == [str(kept)]
    assert redis_client.exists(keys.redbeat_entry(gone)) == 0  # nothing resurrected
    meta = json.loads(redis_client.hget(keys.redbeat_entry(advanced), "meta"))
    assert meta["total_run_count"] == 99  # the other beat's write stands


def test_a_beat_wakes_ahead_of_a_due_second_to_prepare_it(
    settings: Settings,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0).timestamp()
    t = make_trigger({"type": "once", "run_at": datetime.fromtimestamp(start, UTC).isoformat()})
    reconciler.triggers([t.id])
    sch = make_scheduler()
    while time.time() < start - 0.05:  # as celery beat drives it: tick, sleep what it asks
        wait = sch.tick()
        if sch._prepared:
            break
        time.sleep(wait)
    assert time.time() < start and sch._prepared_second == start
    assert list(sch._prepared) == [Keys(settings.key_prefix).redbeat_entry(t.id)]


def test_a_prepared_fire_never_goes_out_before_its_second_even_when_its_entry_is_made_due_early(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    keys = Keys(settings.key_prefix)
    t = make_trigger({"type": "cron", "expression": "* * * * * ?"}, updated_at=datetime.now(UTC))
    reconciler.triggers([t.id])
    sch = make_scheduler()
    _tick_until_prepared(sch)
    second = sch._prepared_second
    if second - time.time() < 0.3:  # too close to the second to look at it before it starts
        _sleep_into(second)
        _tick_until_prepared(sch)
        second = sch._prepared_second
    entry = keys.redbeat_entry(t.id)
    assert entry in sch._prepared
    redis_client.zadd(keys.redbeat_schedule, {entry: 0})  # made due now (a repair, an operator)
    sch.tick()
    assert time.time() < second
    assert [f for f in published(redis_client, settings) if _at(f) >= second] == []
    assert redis_client.zscore(keys.redbeat_schedule, entry) == second  # planned again: due at its second


def test_a_burst_of_many_chunks_publishes_and_records_every_fire_once(
    settings: Settings,
    redis_client: redis.Redis,
    make_trigger: MakeTrigger,
    reconciler: Reconciler,
    make_scheduler: MakeScheduler,
) -> None:
    """A pass of many chunks (the next chunk read ahead, each fired write sent without waiting):
    every fire published once, and every entry's record written before the pass returns."""
    keys = Keys(settings.key_prefix)
    start = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
    ids = [make_trigger({"type": "interval", "every": 3600, "start_at": start.isoformat()}).id for _ in range(23)]
    reconciler.triggers(ids)
    sch = make_scheduler(beat_dispatch_chunk=4)
    sch.prepare_ahead = 0  # every entry read and built at the due instant
    sch.tick()  # takes the lock; nothing due yet
    _sleep_into(int(start.timestamp()))
    sch.tick()
    fires = [f for f in published(redis_client, settings) if _at(f) == start.timestamp()]
    assert sorted(f["trigger_id"] for f in fires) == sorted(str(i) for i in ids)
    for i in ids:  # recorded: the next fire an hour later, one run counted
        key = keys.redbeat_entry(i)
        assert redis_client.zscore(keys.redbeat_schedule, key) == start.timestamp() + 3600
        assert json.loads(redis_client.hget(key, "meta"))["total_run_count"] == 1
    assert redis_client.xlen(keys.fired) == len(ids)
    sch.tick()  # nothing due again
    assert len([f for f in published(redis_client, settings) if _at(f) == start.timestamp()]) == len(ids)
