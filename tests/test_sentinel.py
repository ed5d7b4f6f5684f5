"""Redis Sentinel with real servers: one master, one replica, three sentinels (tests/support/sentinel.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from tests.support.sentinel import sentinel_setup
from woow_scheduler.redis_store import make_redis

pytestmark = pytest.mark.slow


def test_our_client_follows_a_failover(tmp_path: Path) -> None:
    with sentinel_setup(tmp_path) as s:
        client = make_redis(s.url, socket_timeout=2)
        client.set("woow:probe", "before")
        first = s.master_port()
        client.execute_command("WAIT", 1, 2000)  # the write is on the replica before the kill
        failover_s = s.kill_master()
        assert s.master_port() != first
        deadline = time.monotonic() + 20
        while True:
            try:
                client.set("woow:probe2", "after")
                break
            except redis.RedisError:
                assert time.monotonic() < deadline, "the client never reached the new master"
                time.sleep(0.1)
        assert client.get("woow:probe") == "before"
        assert failover_s < 15
