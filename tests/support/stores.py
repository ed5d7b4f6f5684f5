"""The stores under test: a PostgreSQL database and a Redis key prefix of one's own.

The servers come from ``WOOW_TEST_DATABASE_URL`` (a PostgreSQL server URL; default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and ``WOOW_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``).  Databases are created and dropped here, keys are deleted by prefix:
a shared server is never flushed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from woow_scheduler.db import Database
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.settings import Settings, load_settings

PG_SERVER_URL = os.environ.get("WOOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("WOOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = uuid.uuid4().hex[:8]


def admin_engine() -> Engine:
    return create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5})


def pg_url_for(dbname: str) -> str:
    return make_url(PG_SERVER_URL).set(database=dbname).render_as_string(hide_password=False)


def create_test_database(template: str | None = None, *, prefix: str = "woow_test") -> str:
    """A new database (a copy of ``template`` when given); its name."""
    name = f"{prefix}_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            clause = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    finally:
        admin.dispose()
    return name


def drop_test_database(name: str) -> None:
    admin = admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def migrated_database(prefix: str = "woow_test") -> str:
    """A new database with the schema at head; its name."""
    name = create_test_database(prefix=prefix)
    db = Database(pg_url_for(name))
    try:
        upgrade(db)
    finally:
        db.dispose()
    return name


def new_key_prefix(kind: str = "woowtest") -> str:
    return f"{kind}:{RUN_ID}:{uuid.uuid4().hex[:8]}:"


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix`` (SCAN, batches of 5000)."""
    batch: list[Any] = []
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


def settings_for(database_url: str, redis_url: str, key_prefix: str, **overrides: Any) -> Settings:
    """Settings on the given stores with a broker queue of their own (unless ``queue`` is given)."""
    overrides.setdefault("queue", f"woow-{uuid.uuid4().hex[:6]}")
    return load_settings(database_url=database_url, redis_url=redis_url, key_prefix=key_prefix, **overrides)


@contextmanager
def scratch_stores(kind: str = "woow_scratch", **overrides: Any) -> Iterator[tuple[Settings, Database, redis.Redis]]:
    """Settings on a migrated database and a key prefix of their own, the database and a Redis
    client (``decode_responses``); the database is dropped and the keys deleted afterwards."""
    name = migrated_database(prefix=kind)
    prefix = new_key_prefix(kind)
    overrides.setdefault("queue", f"{kind}-{uuid.uuid4().hex[:6]}")
    settings = settings_for(pg_url_for(name), REDIS_URL, prefix, **overrides)
    db = Database(settings.database_url)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield settings, db, client
    finally:
        clear_prefix(client, prefix)
        client.close()
        db.dispose()
        drop_test_database(name)
