"""Parsed cron fields: the immutable value the parsers produce and the engines consume.

Day-of-week numbers are always Quartz's (1=SUN .. 7=SAT), also for Unix expressions, whose
0/7=SUN numbering is translated at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

MIN_YEAR = 1970
#: Quartz accepts years up to the current year + 100 (its ``CronExpression.MAX_YEAR``).
YEARS_AHEAD = 100
#: The bound for expressions validated before (stored specs, RedBeat entries): a year accepted
#: when the expression was written stays accepted (the engine's own search ends here too).
STORED_MAX_YEAR = 9998


def max_year(now: datetime | None = None) -> int:
    """The last year a cron year field may name when written at ``now``: ``now.year + 100``, as
    Quartz.  ``None`` reads the clock (the edges: the CLI, calendars); the pure paths pass ``now``."""
    return (now if now is not None else datetime.now(UTC)).year + YEARS_AHEAD


class DstPolicy(StrEnum):
    """How local times that do not exist, or occur twice, are handled."""

    WALL_CLOCK = "wall_clock"
    QUARTZ = "quartz"


class Dialect(StrEnum):
    QUARTZ = "quartz"
    UNIX = "unix"


class DomKind(StrEnum):
    NONE = "none"  # '?' (Quartz) - the day-of-week field decides
    ANY = "any"  # '*'
    SET = "set"  # explicit days
    LAST = "last"  # L, L-n
    LAST_WEEKDAY = "last_weekday"  # LW, L-nW
    NEAREST = "nearest"  # nW


class DowKind(StrEnum):
    NONE = "none"  # '?'
    ANY = "any"  # '*'
    SET = "set"
    LAST = "last"  # nL: the last given weekday of the month
    NTH = "nth"  # n#k: the k-th given weekday of the month


@dataclass(frozen=True, slots=True)
class CronFields:
    """Everything the engines need, precomputed at parse time."""

    dialect: Dialect
    text: str  # normalised expression (re-parseable)
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: tuple[int, ...]
    years: tuple[int, ...] | None  # None: any year
    dom_kind: DomKind
    dom_values: tuple[int, ...] = ()  # SET: the days; NEAREST: (n,)
    dom_offset: int = 0  # LAST / LAST_WEEKDAY: the n of L-n
    dow_kind: DowKind = DowKind.NONE
    dow_values: tuple[int, ...] = ()  # SET: weekdays 1..7; LAST / NTH: (weekday,)
    dow_nth: int = 0  # NTH: k
    day_or: bool = False  # Unix: both day fields restricted, either may match

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24
