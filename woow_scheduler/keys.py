"""Every Redis key name the project writes, in one place.

All keys live under ``settings.key_prefix`` (default ``woow:``), RedBeat's included, so two
deployments (or two test runs) can share one Redis server.  Ids are validated UUIDs before they
reach a key: names given by users never become part of a key.
"""

from __future__ import annotations

import uuid


class Keys:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    # -- RedBeat --------------------------------------------------------------------------
    @property
    def redbeat_prefix(self) -> str:
        """``redbeat_key_prefix``: RedBeat's schedule zset, entry hashes, statics and beat lock."""
        return f"{self.prefix}redbeat:"

    @property
    def redbeat_schedule(self) -> str:
        return f"{self.redbeat_prefix}:schedule"

    @property
    def redbeat_lock(self) -> str:
        return f"{self.redbeat_prefix}:lock"

    @property
    def redbeat_statics(self) -> str:
        """RedBeat's set of static (``beat_schedule``) entry names; normally empty for woow."""
        return f"{self.redbeat_prefix}:statics"

    def redbeat_entry(self, trigger_id: uuid.UUID | str) -> str:
        """The entry hash of one trigger (the entry's name is the trigger id)."""
        return f"{self.redbeat_prefix}{uuid.UUID(str(trigger_id))}"

    # -- broker (kombu's Redis transport, under its global_keyprefix) -------------------------
    @property
    def broker_prefix(self) -> str:
        """``global_keyprefix`` of the Redis broker: queues, unacked set, bindings."""
        return f"{self.prefix}broker:"

    def broker_queue(self, queue: str) -> str:
        """The Redis list holding a queue's waiting messages."""
        return f"{self.broker_prefix}{queue}"

    @property
    def broker_unacked(self) -> str:
        return f"{self.broker_prefix}unacked"

    @property
    def results_prefix(self) -> str:
        return f"{self.prefix}results:"

    # -- execution ------------------------------------------------------------------------
    def workflow_lock(self, workflow_id: uuid.UUID | str) -> str:
        return f"{self.prefix}lock:workflow:{uuid.UUID(str(workflow_id))}"

    def execution_lease(self, execution_id: uuid.UUID | str) -> str:
        """Liveness key of one run of an ``allow`` workflow (which takes no workflow lock)."""
        return f"{self.prefix}lock:execution:{uuid.UUID(str(execution_id))}"

    # -- beat bookkeeping -------------------------------------------------------------------
    @property
    def beat_state(self) -> str:
        """Hash written by the active beat: instance id, host, pid, last tick."""
        return f"{self.prefix}beat:active"

    @property
    def fired(self) -> str:
        """Stream of fires published by beat, drained into PostgreSQL bookkeeping in batches."""
        return f"{self.prefix}beat:fired"


def split_lock_value(value: str | None) -> tuple[str | None, str | None]:
    """A lock key's value ``"<token>:<execution id>"`` -> ``(token, execution id)``; a bare token gives
    ``(token, None)``.  The layout of the value, read by the worker's lock and the beat's reaper."""
    if not value:
        return None, None
    token, sep, owner = value.partition(":")
    return token, (owner if sep and owner else None)
