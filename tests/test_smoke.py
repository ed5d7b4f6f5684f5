from sqlalchemy import inspect

from woow_scheduler.db import Database


def test_fixtures_give_a_migrated_database_and_a_redis_prefix(db: Database, redis_client, key_prefix: str) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"workflows", "triggers", "executions", "scheduler_instances", "alembic_version"} <= tables
    redis_client.set(f"{key_prefix}probe", "1")
    assert redis_client.get(f"{key_prefix}probe") == "1"
