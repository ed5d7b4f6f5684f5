"""Kept so that branches written before ``tests/support`` merge cleanly: import
:mod:`tests.support.procs` in new code."""

from tests.support.procs import (
    BEAT_READY,
    ROOT,
    WORKER_READY,
    CeleryProcess,
    celery_beat,
    celery_worker,
    child_env,
    settings_env,
    wait_for,
    woow_command,
    worker_args,
)

__all__ = [
    "BEAT_READY",
    "ROOT",
    "WORKER_READY",
    "CeleryProcess",
    "celery_beat",
    "celery_worker",
    "child_env",
    "settings_env",
    "wait_for",
    "woow_command",
    "worker_args",
]
