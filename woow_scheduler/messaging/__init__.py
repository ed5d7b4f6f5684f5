"""The wire between the scheduler, the CLI/API and the workers.

Owns the Celery app factory (``app.create_app``, the task name ``woow.execute_workflow``), the one
wire contract of a fire (``payload``: the ``execute_workflow`` kwargs, their version, the
``workflow:<name>`` shadow name), publishing a fire or a manual run (``publish``) and the Redis
broker glue (``broker``).  Nothing is built on import; the worker's ``-A`` app stays
``woow_scheduler.worker``.
"""
