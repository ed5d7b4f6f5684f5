"""beat's own command packer (used for a burst's in-flight commands) gives redis-py's bytes."""

from __future__ import annotations

import pytest
from redis.connection import Connection

from woow_scheduler.scheduler.beat import _pack


def test_pack_gives_the_bytes_redis_py_packs() -> None:
    args = ("EVAL", "return 1", 2, "woow:k1", "wóów:k2", b"raw\r\nbytes", "", 0, -1, 1733400000, "x" * 10_000)
    assert _pack(args) == b"".join(Connection().pack_command(*args))


def test_pack_refuses_what_it_would_not_encode_as_redis_py_does() -> None:
    for arg in (1.5, True, None):
        with pytest.raises(TypeError):
            _pack(("SET", "k", arg))
