"""Every Redis Lua script woow ships (``*.lua`` next to this file), and the one loader.

- ``entries_read``, ``entries_write``: the reconciler's reads and writes of RedBeat entries
  (``scheduler/sync.py``);
- ``entry_fired``: beat's per-fire update of an entry (``scheduler/beat.py``);
- ``acquire``, ``renew``, ``release``: the worker's lock, a lease with a fence number: take it
  (with a new fence), extend it (never taking another run's key), compare-and-``DEL``
  (``worker/lock.py``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def lua_source(name: str) -> str:
    """The text of the shipped script ``<name>.lua``."""
    return resources.files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
