"""Shared set-up of the scheduling benchmarks: a throw-away PostgreSQL database and Redis prefix."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from woow_scheduler.db import Database, Trigger, Workflow
from woow_scheduler.db.migrate import upgrade
from woow_scheduler.enums import TriggerState
from woow_scheduler.settings import Settings, load_settings

PG_SERVER_URL = os.environ.get("WOOW_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("WOOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _admin() -> Any:
    return create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")


def clear_prefix(client: redis.Redis, prefix: str) -> None:
    batch: list[Any] = []
    for key in client.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            client.delete(*batch)
            batch = []
    if batch:
        client.delete(*batch)


@contextmanager
def bench_env(**overrides: Any) -> Iterator[tuple[Settings, Database, redis.Redis]]:
    """Settings, a migrated database of its own and a Redis client; everything removed afterwards."""
    name = f"woow_bench_{uuid.uuid4().hex[:10]}"
    admin = _admin()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    prefix = f"woowbench:{uuid.uuid4().hex[:8]}:"
    settings = load_settings(
        database_url=url, redis_url=REDIS_URL, key_prefix=prefix, queue=f"bench-{uuid.uuid4().hex[:6]}", **overrides
    )
    db = Database(settings.database_url)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        upgrade(db)
        yield settings, db, client
    finally:
        clear_prefix(client, prefix)
        client.close()
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def insert_triggers(db: Database, specs: Sequence[dict[str, Any]], *, updated_at: datetime | None = None) -> None:
    """One workflow and one NORMAL trigger per spec (bulk insert, not timed by the benches)."""
    now = updated_at or datetime.now(UTC)
    wf_id = uuid.uuid4()
    with db.session() as s:
        s.execute(insert(Workflow), [{"id": wf_id, "name": f"bench-{wf_id.hex[:6]}", "steps": []}])
    for i in range(0, len(specs), 10_000):
        rows = [
            {
                "id": uuid.uuid4(),
                "workflow_id": wf_id,
                "name": f"t{i + j}",
                "type": spec["type"],
                "spec": spec,
                "state": TriggerState.NORMAL,
                "version": 1,
                "fire_count": 0,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
            for j, spec in enumerate(specs[i : i + 10_000])
        ]
        with db.session() as s:
            s.execute(insert(Trigger), rows)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def bench_main(
    run: Callable[[bool], dict[str, Any]],
    doc: str,
    *,
    target: str,
    ratio: tuple[str, str, str] | None = None,
    argv: list[str] | None = None,
) -> int:
    """Shared command line of the benchmarks: ``[--quick] [--json]``, a table or one JSON object.

    ``ratio`` = (name, numerator key, denominator key) adds that ratio to the result.
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = run(args.quick)
    if ratio is not None:
        name, num, den = ratio
        result[name] = round(result[num] / result[den], 3)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:36} {v}")
        print(f"target: {target}", file=sys.stderr)
    return 0
