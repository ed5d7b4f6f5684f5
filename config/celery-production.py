"""Celery tuning for production, layered over woow's own configuration.

Use it with:  celery -A woow_scheduler.worker worker --config config.celery-production
(or import these names into your own module).  Each value is a starting point; the comment says why.
"""

# One message at a time per process: workflows are long compared to the fetch, and prefetching
# more would let one busy process sit on fires another process could start.
worker_prefetch_multiplier = 1

# Restart a pool process after this many tasks / this much memory (KiB) to bound slow leaks in
# user strategies.
worker_max_tasks_per_child = 1000
worker_max_memory_per_child = 512_000

# Let running workflows finish on a warm shutdown (docker stop sends SIGTERM); match the
# container's stop grace period.
worker_cancel_long_running_tasks_on_connection_loss = True

# Keep results a day: `woow workflow run --wait` reads the execution row, not the result.
result_expires = 86_400

# Heartbeats keep broker connections alive through NATs and load balancers.
broker_heartbeat = 30
broker_pool_limit = 10
