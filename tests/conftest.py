"""Shared fixtures: every test gets its own PostgreSQL database and its own Redis key prefix.

The servers come from ``WOOW_TEST_DATABASE_URL`` (a PostgreSQL server URL; default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and ``WOOW_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).  A missing server is a hard failure, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from woow_scheduler.db import Database
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.settings import Settings, load_settings

PG_SERVER_URL = os.environ.get("WOOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("WOOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


def _admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def pg_url_for(dbname: str) -> str:
    return make_url(PG_SERVER_URL).set(database=dbname).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database, cloned for each test (much faster than migrating each time)."""
    name = f"woow_tmpl_{RUN_ID}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"PostgreSQL at {PG_SERVER_URL} is not reachable: {exc}", pytrace=False)
    db = Database(pg_url_for(name))
    upgrade(db)
    db.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def create_test_database(template: str | None) -> str:
    name = f"woow_test_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return name


def drop_test_database(name: str) -> None:
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


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
def sqlite_url(tmp_path) -> str:  # type: ignore[no-untyped-def]
    return f"sqlite:///{tmp_path / 'woow.db'}"


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"woowtest:{RUN_ID}:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
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
