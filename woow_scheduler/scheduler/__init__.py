"""The scheduler side of woow-scheduler: everything the beat process runs.

Owns the beat (``beat.WoowScheduler``, ``BeatLock``, the maintenance thread), the RedBeat entry
schedule type (``schedule``) and its JSON codec (``codec``), the reconciler that mirrors PostgreSQL's
triggers into RedBeat (``sync``), the fire bookkeeping back into PostgreSQL (``bookkeeping``) and
the reaper of runs whose worker died (``reaper``).

It imports ``db``, ``messaging``, ``triggers`` and the shared modules at the package root, never
``woow_scheduler.worker`` (``tests/unit/test_layout.py`` checks this).
"""
