"""woow-scheduler: Quartz-style workflow scheduling on Celery.

PostgreSQL holds the truth (workflows, triggers, executions), RedBeat in Redis holds the
live beat schedule, Celery beat fires and Celery workers execute.
"""

__version__ = "0.1.0"
