"""Redis client factory (no module-level clients)."""

from __future__ import annotations

from typing import Any

import redis

from .errors import StoreUnavailable


def make_redis(url: str, **kwargs: Any) -> redis.Redis:
    kwargs.setdefault("socket_connect_timeout", 5)
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("health_check_interval", 30)
    kwargs.setdefault("decode_responses", True)
    return redis.Redis.from_url(url, **kwargs)


def ping(client: redis.Redis) -> None:
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailable(f"redis: cannot connect ({exc})") from exc
