"""What keeps a benchmark from reporting nonsense: one source of connection settings, and no rate
from a run that saw no work.

A benchmark that watched an empty queue, published nothing or finished in less time than a clock
can tell raises :class:`NoWork`; the command line turns it into one line on stderr and a non-zero
exit, and prints no figure of that benchmark.  No heavy imports here: ``python -m bench`` checks
the environment before it loads anything else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

# below this a measured time says more about the clock than about the work
MIN_ELAPSED_S = 0.001
TEST_PREFIX = "WOOW_TEST_"


class NoWork(RuntimeError):
    """The benchmark saw no (or not all of its) work: it has no rate to report."""


def check_one_source(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a mix of connection settings: the harness takes its servers from ``WOOW_TEST_*``
    and builds every other setting itself, for itself and for the processes it starts.  A
    ``WOOW_BROKER_URL`` left in the environment once sent the messages to one Redis database
    while the harness watched another, and an empty queue "drained" at 10^9 tasks/s."""
    env = os.environ if environ is None else environ
    stray = sorted(k for k in env if k.startswith("WOOW_") and not k.startswith(TEST_PREFIX))
    if stray:
        raise NoWork(
            f"{stray[0]} is set: the harness takes its servers from WOOW_TEST_DATABASE_URL and "
            f"WOOW_TEST_REDIS_URL only and builds every other setting itself; unset "
            f"{', '.join(stray)}"
        )


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise NoWork(reason)


def elapsed(seconds: float, what: str) -> float:
    """A measured duration, refused when it is under the sane floor (or not a number)."""
    if not math.isfinite(seconds) or seconds < MIN_ELAPSED_S:
        raise NoWork(f"{what}: measured {seconds!r} s, under the floor of {MIN_ELAPSED_S} s: nothing was timed")
    return seconds


def rate(count: int, seconds: float, what: str, *, expected: int | None = None) -> float:
    """``count / seconds``, refused when nothing (or not everything expected) was counted."""
    if count <= 0:
        raise NoWork(f"{what}: saw no work (0 of {expected if expected is not None else '?'})")
    if expected is not None and count != expected:
        raise NoWork(f"{what}: saw {count} of {expected}")
    return count / elapsed(seconds, what)


def named(figures: Mapping[str, float], n: int, canonical: int, aliases: Mapping[str, str]) -> dict[str, float]:
    """The historical keys (``dispatch_10k_s`` ...) only when the run measured that many: a quick
    run of 2,000 fires reports ``dispatch_n`` and ``dispatch_s``, never ``dispatch_10k_s``."""
    if n != canonical:
        return {}
    return {alias: figures[key] for key, alias in aliases.items()}
