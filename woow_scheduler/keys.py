"""Every Redis key name the project writes, in one place.

All keys live under ``settings.key_prefix`` (default ``woow:``), RedBeat's included, so two
deployments (or two test runs) can share one Redis server.  Ids are validated UUIDs before they
reach a key: names given by users never become part of a key.
"""

from __future__ import annotations

import hashlib
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
    def broker_unacked_index(self) -> str:
        """The sorted set of delivery tags by delivery time that goes with :attr:`broker_unacked`."""
        return f"{self.broker_prefix}unacked_index"

    @property
    def results_prefix(self) -> str:
        return f"{self.prefix}results:"

    # -- operator console -----------------------------------------------------------------
    def console_session(self, digest: str) -> str:
        """One console session (JSON), named by the SHA-256 hex of its cookie value."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("console session key: expected a SHA-256 hex digest")
        return f"{self.prefix}console:session:{digest}"

    # -- execution ------------------------------------------------------------------------
    def workflow_lock(self, workflow_id: uuid.UUID | str) -> str:
        return f"{self.prefix}lock:workflow:{uuid.UUID(str(workflow_id))}"

    def execution_lease(self, execution_id: uuid.UUID | str) -> str:
        """Liveness key of one run of an ``allow`` workflow (which takes no workflow lock)."""
        return f"{self.prefix}lock:execution:{uuid.UUID(str(execution_id))}"

    def workflow_fence(self, workflow_id: uuid.UUID | str) -> str:
        """Fence counter of a workflow's lock (``INCR``ed by every acquisition)."""
        return f"{self.prefix}fence:workflow:{uuid.UUID(str(workflow_id))}"

    @property
    def lease_fence(self) -> str:
        """One fence counter shared by every execution lease of ``allow`` runs."""
        return f"{self.prefix}fence:execution"

    # -- beat bookkeeping -------------------------------------------------------------------
    @property
    def beat_state(self) -> str:
        """Hash written by the active beat: instance id, host, pid, last tick."""
        return f"{self.prefix}beat:active"

    @property
    def fire_journal(self) -> str:
        """Sorted set of published fires not yet seen in ``executions``, scored by publish time (sweeper)."""
        return f"{self.prefix}beat:journal"

    @property
    def fired(self) -> str:
        """Stream of fires published by beat, drained into PostgreSQL bookkeeping in batches."""
        return f"{self.prefix}beat:fired"

    # -- API ------------------------------------------------------------------------------
    def auth_failures(self, client: str) -> str:
        """Counter of failed token lookups from one client address (hashed: never raw input)."""
        return f"{self.prefix}api:authfail:{hashlib.sha256(client.encode()).hexdigest()[:32]}"

    @property
    def metrics_cache(self) -> str:
        """The last /metrics database snapshot, shared by every API replica."""
        return f"{self.prefix}api:metrics"

    @property
    def metrics_lock(self) -> str:
        return f"{self.prefix}api:metrics:lock"

def fence_key(lock_key: str) -> str:
    """Fence counter of a lock key built outside :class:`Keys` (tests, tools)."""
    return f"{lock_key}:fence"


def lock_value(prefix: str, fence: int, holder: str) -> str:
    """A lock key's value: ``"<token>:<execution id>:<fence>:<pid>@<node>"`` (``prefix`` is the first two;
    the acquire and renew scripts build the same string)."""
    return f"{prefix}:{fence}:{holder}"


def lock_value_parts(value: str | None) -> tuple[str | None, str | None, int | None, str | None]:
    """``(token, execution id, fence, "<pid>@<node>")`` of a lock value; missing parts are ``None``
    (older values are ``"<token>:<execution id>"`` or a bare token)."""
    if not value:
        return None, None, None, None
    token, _, rest = value.partition(":")
    owner, _, rest = rest.partition(":")
    fence, _, holder = rest.partition(":")
    return token, owner or None, int(fence) if fence.isdigit() else None, holder or None


def split_lock_value(value: str | None) -> tuple[str | None, str | None]:
    """A lock key's value -> ``(token, execution id)``; a bare token gives ``(token, None)``.
    The layout of the value, read by the worker's lock and the beat's reaper."""
    token, owner, _, _ = lock_value_parts(value)
    return token, owner
