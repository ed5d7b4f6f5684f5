"""kombu's Redis transport, with one synchronous client per channel instead of one per command.

kombu builds a new ``redis.Redis`` object for every publish, acknowledgement and queue query; with
redis-py 6 and later each construction copies the client's ~170 response callbacks, about a quarter
of the cost of one publish (measured with cProfile: 0.23 of 0.89 ms).  The client is only a handle
on the channel's connection pool, so one per channel does the same work.  Selected by
``messaging.app.celery_config`` (``broker_transport``) for ``redis://`` and ``rediss://`` brokers
while ``WOOW_BROKER_CLIENT_REUSE`` is on (the default; ``woow flower`` turns it off, since Flower
tells brokers apart by URL scheme); everything else is kombu's own Redis transport.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _sync_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[no-untyped-call]
        client = self._sync_client
        if client is None or client.connection_pool is not self.pool:  # a reconnect makes a new pool
            client = self._sync_client = super()._create_client(asynchronous=False)  # type: ignore[no-untyped-call]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
