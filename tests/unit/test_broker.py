"""The broker transport choice and its client reuse (pure: no server is contacted)."""

from __future__ import annotations

from woow_scheduler.messaging.app import celery_config
from woow_scheduler.settings import load_settings


def test_redis_broker_reuses_clients_unless_turned_off() -> None:
    assert celery_config(load_settings())["broker_transport"] == "woow_scheduler.messaging.broker:Transport"
    assert "broker_transport" not in celery_config(load_settings(broker_client_reuse=False))
    assert "broker_transport" not in celery_config(load_settings(broker_url="amqp://guest@127.0.0.1//"))


def test_one_client_per_channel_pool() -> None:
    from kombu import Connection

    with Connection("redis://127.0.0.1:6379/0", transport="woow_scheduler.messaging.broker:Transport") as conn:
        channel = conn.default_channel
        first = channel._create_client()
        assert channel._create_client() is first  # no new client per command
        assert channel._create_client(asynchronous=True) is not first
        channel._pool = None  # what a reconnect does: the next client belongs to the new pool
        assert channel._create_client() is not first
