"""kombu's Redis transport, with one synchronous client per channel instead of one per command.

kombu builds a new ``redis.Redis`` object for every publish, acknowledgement and queue query; with
redis-py 6 and later each construction copies the client's ~170 response callbacks, about a quarter
of the cost of one publish (measured with cProfile: 0.23 of 0.89 ms).  The client is only a handle
on the channel's connection pool, so one per channel does the same work.  Selected by
``messaging.app.celery_config`` (``broker_transport``) for ``redis://`` and ``rediss://`` brokers
while ``WOOW_BROKER_CLIENT_REUSE`` is on (the default; ``woow flower`` turns it off, since Flower
tells brokers apart by URL scheme); everything else is kombu's own Redis transport.

**Monitoring events are published without waiting for Redis's answer.**  A worker sends three task
events per message (received, started, succeeded: what Flower and ``celery events`` show), each a
``PUBLISH`` on the ``celeryev`` fanout exchange whose reply (the number of subscribers) kombu
throws away; waited for, each cost the worker's main process a round trip, during which it
dispatched nothing to its idle pool processes.  Here ``CLIENT REPLY SKIP`` and the ``PUBLISH`` go
out in one write on a pooled connection (the same keys, prefix and payload kombu's publish sends),
so Redis delivers the event exactly as before and sends nothing back: the connection stays in step.
A connection error on the write raises as before.  What is lost is only an *error reply* to the
``PUBLISH`` (an ACL refusal, say), which kombu would have raised and which now goes unseen: events
are best-effort monitoring in Celery anyway (never stored, dropped when nobody listens).  Every
other exchange (remote control broadcasts) and every queue write still waits for its answer.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps

from ..redis_store import pack_command, plain_pool, send_unanswered

#: Fanout exchanges published without waiting for the answer: Celery's event exchange (its default
#: name ``event_exchange``; woow never changes it).
UNANSWERED_FANOUT = frozenset({"celeryev"})


class Channel(kombu_redis.Channel):
    _sync_client: Any = None
    #: set by :func:`capture`: publishes keep their final commands here instead of sending them
    _capture_sink: list[Prepared] | None = None

    def create_publish_batch(self, max_size: int) -> Any:
        sink = self._capture_sink
        if sink is not None:
            return _Capture(self, sink)
        return super().create_publish_batch(max_size)  # type: ignore[no-untyped-call]

    def _put_fanout(self, exchange: str, message: Any, routing_key: str, **kwargs: Any) -> None:
        if exchange not in UNANSWERED_FANOUT or kwargs.get("_publish_batch") is not None:
            super()._put_fanout(exchange, message, routing_key, **kwargs)  # type: ignore[no-untyped-call]
            return
        kwargs.pop("_publish_batch", None)
        topics = self._get_publish_topics(exchange, routing_key)  # type: ignore[no-untyped-call]
        payload = dumps(message)  # type: ignore[no-untyped-call]
        with self.conn_or_acquire() as client:
            prefix = getattr(client, "global_keyprefix", "") or ""
            packed = [pack_command("PUBLISH", prefix + str(topic), payload) for topic in topics]
            commands = [p for p in packed if p is not None]
            if not plain_pool(client) or len(commands) != len(packed):
                for topic in topics:  # not a plain pool (or an odd payload): kombu's answered publish
                    client.publish(topic, payload)
                return
            send_unanswered(client, *commands)

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:  # a reconnect makes a new pool
            client = self._sync_client = super()._create_client(asynchronous=False)  # type: ignore[no-untyped-call]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


# -- prepared messages ---------------------------------------------------------------------------
#
# Beat builds the messages of the next second's fires before that second starts and, at the due
# instant, only writes them.  "Building" is Celery's ``send_task`` and kombu's encoding, unchanged:
# inside :func:`capture` the producer's publish batch is a :class:`_Capture`, which lets kombu route
# and encode every message down to its final Redis commands (``LPUSH <queue> <encoded message>``)
# and keeps those commands instead of sending them.  :func:`send_prepared` writes kept commands in
# one pipeline.  A prepared message is therefore byte for byte what kombu would have pushed.

#: The final broker commands of one message: ``((command, args), ...)``.
Prepared = tuple[tuple[str, tuple[Any, ...]], ...]


class _Capture:
    """A kombu publish batch (the interface ``Producer.batch`` drives) that keeps commands."""

    def __init__(self, channel: Channel, sink: list[Prepared]) -> None:
        self.channel = channel
        self._sink = sink
        self._collecting: list[tuple[str, tuple[Any, ...]]] | None = None

    def publish(self, message: Any, **kwargs: Any) -> Any:
        commands: list[tuple[str, tuple[Any, ...]]] = []
        self._collecting = commands
        try:
            result = self.channel.basic_publish(message, _publish_batch=self, **kwargs)  # type: ignore[no-untyped-call]
        finally:
            self._collecting = None
        self._sink.append(tuple(commands))
        return result

    def add(self, name: str, *args: Any) -> None:
        if self._collecting is None:
            raise RuntimeError("broker command added outside a publish")
        self._collecting.append((name, args))

    def flush(self) -> None:  # nothing is sent: the caller keeps what was captured
        return None

    def discard(self) -> None:
        return None

    def close(self) -> None:
        return None


def can_prepare(producer: Any) -> bool:
    """Whether messages published through ``producer`` can be prepared ahead (our Redis channel,
    publishing without automatic retries: a pipeline must never be replayed half-sent)."""
    channel = producer.channel
    return isinstance(channel, Channel) and bool(channel.supports_batch_publish)


class capture:
    """Inside this block, messages published through ``producer`` are built and encoded as always
    and not sent: each publish appends its final commands to the yielded list."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.sink: list[Prepared] = []
        self._batch: Any = None

    def __enter__(self) -> list[Prepared]:
        channel = self._producer.channel
        if not isinstance(channel, Channel):
            raise RuntimeError("messages can be prepared only on woow's Redis broker transport")
        channel._capture_sink = self.sink
        self._batch = self._producer.batch(max_size=1 << 30)
        try:
            self._batch.__enter__()
        except BaseException:
            channel._capture_sink = None
            raise
        return self.sink

    def __exit__(self, *exc: Any) -> None:
        try:
            self._batch.__exit__(*exc)
        finally:
            self._producer.channel._capture_sink = None


def send_prepared(producer: Any, messages: list[Prepared]) -> None:
    """Write prepared messages in order, in one pipelined round trip (consecutive pushes to one
    queue as one ``LPUSH`` with many values, which keeps their order).  Raises when the write
    failed: delivery of the whole batch is then uncertain, as with kombu's own publish batch."""
    if not messages:
        return
    channel = producer.channel
    with channel.conn_or_acquire() as client, client.pipeline(transaction=False) as pipe:
        key: Any = None
        values: list[Any] = []
        for commands in messages:
            for name, args in commands:
                if name == "lpush" and len(args) == 2:
                    if args[0] != key and values:
                        pipe.lpush(key, *values)
                        values = []
                    key = args[0]
                    values.append(args[1])
                    continue
                if values:
                    pipe.lpush(key, *values)
                    key, values = None, []
                getattr(pipe, name)(*args)
        if values:
            pipe.lpush(key, *values)
        pipe.execute()
