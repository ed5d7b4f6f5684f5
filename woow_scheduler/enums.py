"""String enums shared by the models, the service layer and the CLI."""

from __future__ import annotations

from enum import StrEnum


class ConcurrencyPolicy(StrEnum):
    FORBID = "forbid"  # Quartz DisallowConcurrentExecution: a fire that finds the lock held is skipped
    QUEUE = "queue"  # wait (retry with backoff) until the lock frees, bounded by max_queue_wait
    ALLOW = "allow"  # no lock


class TriggerState(StrEnum):
    NORMAL = "NORMAL"
    PAUSED = "PAUSED"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    BLOCKED = "BLOCKED"  # shown in listings while the workflow runs under the no-concurrency rule


#: Trigger states that fire and have a live schedule entry (BLOCKED is NORMAL while its workflow runs).
ACTIVE_TRIGGER_STATES = frozenset({TriggerState.NORMAL, TriggerState.BLOCKED})


class ExecutionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    RETRYING = "retrying"
    TIMED_OUT = "timed_out"
    LOCK_LOST = "lock_lost"  # the run lost its workflow lock (lease) and stopped before its next step

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset(
    {
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.FAILED,
        ExecutionStatus.SKIPPED,
        ExecutionStatus.TIMED_OUT,
        ExecutionStatus.LOCK_LOST,
    }
)


class InstanceKind(StrEnum):
    BEAT = "beat"
    WORKER = "worker"
