"""What tests and benchmarks stand on, importable by both (``bench/`` imports only this package).

- :mod:`.stores`: the PostgreSQL and Redis servers under test (``WOOW_TEST_*``), a database or
  key prefix of one's own, migrated and removed afterwards;
- :mod:`.factories`: rows made straight in the database (one ``make_workflow``, one
  ``make_trigger``, a bulk ``insert_triggers``);
- :mod:`.procs`: real ``celery``/``woow`` processes in their own process group, stopped by PID;
- :mod:`.servers`: Redis and PostgreSQL servers of a test's own on free ports (never the shared
  ones), for scenarios that kill or restart a store.
- :mod:`.sentinel`: a Redis master, replica and three sentinels of a test's own;
- :mod:`.rabbitmq`: a RabbitMQ vhost of a test's own on the machine's broker.

Nothing here is a pytest fixture: ``tests/conftest.py`` and the folders' ``conftest.py`` wrap these.
"""
