"""Shared fixtures: every test gets its own PostgreSQL database and its own Redis key prefix.

The servers come from ``WOOW_TEST_DATABASE_URL`` (a PostgreSQL server URL; default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and ``WOOW_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).  A missing server is a hard failure, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.stores import (
    PG_SERVER_URL,
    REDIS_URL,
    clear_prefix,
    create_test_database,
    drop_test_database,
    migrated_database,
    new_key_prefix,
    pg_url_for,
)
from woow_scheduler.db import Database
from woow_scheduler.settings import Settings, load_settings


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, cloned for each test (much faster than migrating each time)."""
    try:
        name = migrated_database(prefix="woow_tmpl")
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL at {PG_SERVER_URL} is not reachable: {exc}", pytrace=False)
    yield name
    drop_test_database(name)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database of this test's own."""
    name = create_test_database(pg_template)
    yield pg_url_for(name)
    drop_test_database(name)


@pytest.fixture
def empty_pg_url() -> Iterator[str]:
    """URL of a fresh, EMPTY PostgreSQL database (for migration tests)."""
    try:
        name = create_test_database(None)
    except Exception as exc:  # pragma: no cover
        pytest.fail(f"PostgreSQL at {PG_SERVER_URL} is not reachable: {exc}", pytrace=False)
    yield pg_url_for(name)
    drop_test_database(name)


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'woow.db'}"


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = new_key_prefix()
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        clear_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:  # pragma: no cover
        pytest.fail(f"Redis at {REDIS_URL} is not reachable: {exc}", pytrace=False)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str, key_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def settings(pg_url: str, redis_url: str, key_prefix: str) -> Settings:
    """Settings pointing at this test's own database and key prefix."""
    return load_settings(database_url=pg_url, redis_url=redis_url, key_prefix=key_prefix)
