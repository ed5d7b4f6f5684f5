"""Import shim: deployments name ``woow_scheduler.beat:WoowScheduler`` (Procfile, compose, docs).

The beat lives in :mod:`woow_scheduler.scheduler.beat`.  (A package rather than ``beat.py`` so that
git sees ``beat.py`` as moved, not rewritten.)
"""

from ..scheduler.beat import SCHEDULER_PATH, BeatLock, WoowScheduler, WoowSchedulerEntry, beat_status, run_beat

__all__ = ["SCHEDULER_PATH", "BeatLock", "WoowScheduler", "WoowSchedulerEntry", "beat_status", "run_beat"]
