"""The one RESP packer (``redis_store.pack_command``: the worker's lock scripts, beat's in-flight
burst commands) gives the very bytes redis-py packs, and refuses what redis-py would encode another way."""

from __future__ import annotations

import enum

import pytest
from redis.connection import Connection

from woow_scheduler.redis_store import bulk, pack_command
from woow_scheduler.scheduler.beat import _pack


class _Small(enum.IntEnum):
    ONE = 1


class _Str(str):
    pass


COMMANDS = [
    ("EVAL", "return 1", 2, "woow:k1", "wóów:k2", b"raw\r\nbytes", "", 0, -1, 1733400000, "x" * 10_000),
    ("EVALSHA", "ab" * 20, 2, "woow:lock:workflow:x", "woow:fence:x", "tok:e1", 30000, 1733400000000, "", 0),
    ("EVALSHA", "s", 1, "präfix:é", "t:ü:1:2@n", -5, 2**70),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_pack_command_gives_the_bytes_redis_py_packs(args: tuple[str | bytes | int, ...]) -> None:
    expected = b"".join(Connection().pack_command(*args))  # type: ignore[no-untyped-call]
    assert pack_command(*args) == expected
    assert _pack(args) == expected


def test_a_command_assembled_from_bulk_parts_is_the_same_command() -> None:
    args = ("SET", "präfix:é", "t:ü:1:2@n")
    assert b"*3\r\n" + b"".join(bulk(a) for a in args) == pack_command(*args)


@pytest.mark.parametrize("odd", [1.5, True, None, _Small.ONE, _Str("k")])
def test_what_redis_py_would_encode_another_way_is_refused(odd: object) -> None:
    assert pack_command("SET", "k", odd) is None  # type: ignore[arg-type]  # the caller takes redis-py's path
    with pytest.raises(TypeError, match="beat packs str, bytes and int arguments"):
        _pack(("SET", "k", odd))
