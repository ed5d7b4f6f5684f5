"""Parse Quartz (6/7 fields) and Unix (5 fields) cron expressions into :class:`CronFields`.

Quartz's own parser silently accepts some nonsense (``*/-5``, ``0/0``, ``MON,,WED``, ``??``,
``MON/2`` which ignores the step, ``1W,15`` which ignores all but the first day).  This parser
rejects all of those with a one-line message naming the field, the offending text and the
allowed form, always as :class:`~woow_scheduler.errors.InvalidCronExpression`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from woow_scheduler.cron.fields import (
    MIN_YEAR,
    CronFields,
    Dialect,
    DomKind,
    DowKind,
    max_year,
)
from woow_scheduler.errors import InvalidCronExpression

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

_SPLIT = re.compile(r"[ \t]+")
_ITEM = re.compile(r"^(?:(\*)|([A-Z]{3}|\d{1,4})(?:-([A-Z]{3}|\d{1,4}))?)(?:/(\d{1,4}))?$")
_UNIX_MARK = "(unix)"


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    lo: int
    hi: int
    allowed: str
    names: tuple[str, ...] = ()  # names[i] has the value name_base + i
    name_base: int = 1
    wrap: bool = True
    max_step: int = 0

    def fail(self, text: str, reason: str) -> InvalidCronExpression:
        return InvalidCronExpression(f"{self.name}: {text!r} {reason}", field=self.name)


SECOND = _Field("second", 0, 59, "0-59", max_step=59)
MINUTE = _Field("minute", 0, 59, "0-59", max_step=59)
HOUR = _Field("hour", 0, 23, "0-23", max_step=23)
DOM = _Field("day-of-month", 1, 31, "1-31", max_step=31)
MONTH = _Field("month", 1, 12, "1-12 or JAN-DEC", MONTH_NAMES, 1, max_step=12)
DOW = _Field("day-of-week", 1, 7, "1-7 (1=SUN) or SUN-SAT", DAY_NAMES, 1, max_step=7)


@lru_cache(maxsize=8)
def year_field(last: int) -> _Field:
    """The year field of expressions written when ``last`` is the latest year allowed."""
    return _Field("year", MIN_YEAR, last, f"{MIN_YEAR}-{last}", wrap=False, max_step=last - MIN_YEAR)

UNIX_DOW = _Field("day-of-week", 0, 7, "0-7 (0 or 7=SUN) or SUN-SAT", DAY_NAMES, 0, max_step=7)

_QUARTZ_FORM = "sec min hour day-of-month month day-of-week [year]"


def _value(fd: _Field, token: str, item: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token in fd.names:
        value = fd.names.index(token) + fd.name_base
    elif fd.names:
        raise fd.fail(item, f"has an unknown name {token!r}; allowed: {fd.allowed}")
    else:
        raise fd.fail(item, f"is not a number; allowed: {fd.allowed}")
    if not fd.lo <= value <= fd.hi:
        raise fd.fail(token, f"is out of range {fd.allowed}")
    return value


def _expand(fd: _Field, start: int, stop: int, step: int, item: str) -> list[int]:
    """Values from start to stop by step; a range whose end is before its start wraps (as Quartz)."""
    if stop >= start:
        return list(range(start, stop + 1, step))
    if not fd.wrap:
        raise fd.fail(item, "is a range whose end is before its start")
    span = fd.hi - fd.lo + 1
    out = []
    for i in range(start, stop + span + 1, step):
        out.append(fd.lo + (i - fd.lo) % span)
    return out


def _parse_list(fd: _Field, text: str) -> tuple[set[int], bool]:
    """Parse a comma-separated list of *, values, ranges and steps.  Returns (values, is_star)."""
    values: set[int] = set()
    star = False
    for item in text.split(","):
        if not item:
            raise fd.fail(text, "has an empty list item")
        m = _ITEM.fullmatch(item)
        if m is None:
            raise fd.fail(
                item,
                f"is not a valid item; allowed: *, a value, a-b, */n, a/n, a-b/n with values {fd.allowed}",
            )
        any_, first, last, step_s = m.groups()
        step = 1
        if step_s is not None:
            step = int(step_s)
            if not 1 <= step <= fd.max_step:
                raise fd.fail(item, f"has step {step}; a step must be 1-{fd.max_step}")
            if (first is not None and not first.isdigit()) or (last is not None and not last.isdigit()):
                raise fd.fail(item, "combines a name with a step; use numbers, e.g. 2-6/2")
        if any_:
            star = star or step == 1
            values.update(range(fd.lo, fd.hi + 1, step))
            continue
        start = _value(fd, first, item)
        if last is not None:
            stop = _value(fd, last, item)
        elif step_s is not None:
            stop = fd.hi
        else:
            stop = start
        values.update(_expand(fd, start, stop, step, item))
    return values, star


def _split(text: str) -> list[str]:
    if not isinstance(text, str):
        raise InvalidCronExpression(f"expression: {text!r} is not a string", field="expression")
    stripped = text.strip(" \t")
    if not stripped:
        raise InvalidCronExpression(
            f"expression: {text!r} is empty; expected {_QUARTZ_FORM} or a 5-field Unix cron",
            field="expression",
        )
    return _SPLIT.split(stripped)


def parse(text: str, *, last_year: int | None = None) -> CronFields:
    """Parse a Quartz (6 or 7 fields) or Unix (5 fields) cron expression.

    ``last_year``: the latest year the year field may name; default the current year + 100, as
    Quartz (see :func:`~woow_scheduler.cron.fields.max_year`)."""
    parts = _split(text)
    unix_marked = parts[-1].lower() == _UNIX_MARK
    if unix_marked:
        parts = parts[:-1]
    if len(parts) == 5:
        return _parse_unix(parts)
    if unix_marked:
        raise InvalidCronExpression(
            f"expression: {text!r} is marked (unix) but has {len(parts)} fields; Unix cron has 5",
            field="expression",
        )
    if len(parts) in (6, 7):
        return _parse_quartz(parts, year_field(last_year if last_year is not None else max_year()))
    raise InvalidCronExpression(
        f"expression: {text!r} has {len(parts)} fields; expected 6 or 7 ({_QUARTZ_FORM}) "
        "or 5 (Unix: min hour day-of-month month day-of-week)",
        field="expression",
    )


def _plain(fd: _Field, text: str) -> tuple[tuple[int, ...], str]:
    if "?" in text:
        raise fd.fail(text, "uses '?', which is only allowed in day-of-month or day-of-week")
    if "L" in text and fd.name not in (DOM.name, DOW.name) and "JUL" not in text:
        raise fd.fail(text, "uses 'L', which is only allowed in day-of-month or day-of-week")
    values, _ = _parse_list(fd, text)
    return tuple(sorted(values)), text


_DOM_LAST = re.compile(r"^L(?:-(\d{1,2}))?(W?)$")
_DOM_NEAR = re.compile(r"^(\d{1,2})W$")
_DOW_LAST = re.compile(r"^([A-Z]{3}|\d)L$")
_DOW_NTH = re.compile(r"^([A-Z]{3}|\d)#(\d+)$")


def _parse_quartz(parts: list[str], year: _Field) -> CronFields:
    parts = [p.upper() for p in parts]
    seconds, _ = _plain(SECOND, parts[0])
    minutes, _ = _plain(MINUTE, parts[1])
    hours, _ = _plain(HOUR, parts[2])
    months, _ = _plain(MONTH, parts[4])
    years: tuple[int, ...] | None = None
    if len(parts) == 7:
        ys, _ = _plain(year, parts[6])
        years = None if parts[6] == "*" else ys
    dom_text, dow_text = parts[3], parts[5]
    if dom_text == "?" and dow_text == "?":
        raise InvalidCronExpression(
            "day-of-month/day-of-week: both are '?'; exactly one must be '?', e.g. '0 0 9 ? * MON-FRI'",
            field="day-of-month",
        )
    if dom_text != "?" and dow_text != "?":
        raise InvalidCronExpression(
            f"day-of-month/day-of-week: {dom_text!r} and {dow_text!r} are both given; "
            "Quartz requires exactly one of them to be '?', e.g. '0 0 9 ? * MON-FRI' or '0 0 9 1 * ?'",
            field="day-of-week",
        )
    fields: dict[str, object] = {}
    if dom_text == "?":
        fields["dom_kind"] = DomKind.NONE
        _parse_quartz_dow(dow_text, fields)
    else:
        fields["dow_kind"] = DowKind.NONE
        _parse_quartz_dom(dom_text, fields)
    return CronFields(
        dialect=Dialect.QUARTZ,
        text=" ".join(parts),
        seconds=seconds,
        minutes=minutes,
        hours=hours,
        months=months,
        years=years,
        **fields,  # type: ignore[arg-type]  # keys/values built above match the dataclass fields
    )


def _parse_quartz_dom(text: str, out: dict[str, object]) -> None:
    if "?" in text:
        raise DOM.fail(text, "mixes '?' with other items; '?' must stand alone")
    if "L" in text or "W" in text:
        if "," in text:
            raise DOM.fail(text, "combines L or W with a list; L, L-n, LW, L-nW and nW must stand alone")
        m = _DOM_LAST.fullmatch(text)
        if m is not None:
            offset = int(m.group(1) or 0)
            if offset > 30:
                raise DOM.fail(text, "has an offset above 30; allowed: L-0 .. L-30")
            out["dom_kind"] = DomKind.LAST_WEEKDAY if m.group(2) else DomKind.LAST
            out["dom_offset"] = offset
            return
        m = _DOM_NEAR.fullmatch(text)
        if m is not None:
            day = int(m.group(1))
            if not 1 <= day <= 31:
                raise DOM.fail(text, "names a day out of range 1-31 for nW")
            out["dom_kind"] = DomKind.NEAREST
            out["dom_values"] = (day,)
            return
        raise DOM.fail(text, "is not valid; allowed: 1-31 lists/ranges/steps, *, ?, L, L-n, LW, L-nW, nW")
    values, star = _parse_list(DOM, text)
    out["dom_kind"] = DomKind.ANY if star else DomKind.SET
    out["dom_values"] = tuple(sorted(values))


def _dow_value(token: str, text: str) -> int:
    return _value(DOW, token, text)


def _parse_quartz_dow(text: str, out: dict[str, object]) -> None:
    if "?" in text:
        raise DOW.fail(text, "mixes '?' with other items; '?' must stand alone")
    if text == "L":  # Quartz: 'L' alone in day-of-week is 7, Saturday
        out["dow_kind"] = DowKind.SET
        out["dow_values"] = (7,)
        return
    if "#" in text or "L" in text:  # no day name contains an L
        if "," in text:
            raise DOW.fail(text, "combines nL or n#k with a list; they must stand alone")
        m = _DOW_LAST.fullmatch(text)
        if m is not None:
            out["dow_kind"] = DowKind.LAST
            out["dow_values"] = (_dow_value(m.group(1), text),)
            return
        m = _DOW_NTH.fullmatch(text)
        if m is not None:
            nth = int(m.group(2))
            if not 1 <= nth <= 5:
                raise DOW.fail(text, "has k outside 1-5 in n#k")
            out["dow_kind"] = DowKind.NTH
            out["dow_values"] = (_dow_value(m.group(1), text),)
            out["dow_nth"] = nth
            return
        raise DOW.fail(text, "is not valid; allowed: 1-7 (1=SUN) or SUN-SAT lists/ranges/steps, *, ?, L, nL, n#k")
    values, star = _parse_list(DOW, text)
    out["dow_kind"] = DowKind.ANY if star else DowKind.SET
    out["dow_values"] = tuple(sorted(values))


_UNIX_FIELDS = (MINUTE, HOUR, DOM, MONTH, UNIX_DOW)


def _parse_unix(parts: list[str]) -> CronFields:
    parts = [p.upper() for p in parts]
    parsed: list[tuple[set[int], bool]] = []
    for fd, text in zip(_UNIX_FIELDS, parts, strict=True):
        if text == "?":
            text = "*"
        for ch in "L#W?":
            if ch in text and not (ch == "L" and "JUL" in text):
                raise fd.fail(
                    text,
                    f"uses {ch!r}, which Unix cron does not support; write a 6/7-field Quartz expression instead",
                )
        parsed.append(_parse_list(fd, text))
    (mins, _), (hrs, _), (doms, dom_star), (mons, _), (dows, dow_star) = parsed
    dom_star = dom_star or parts[2] in ("*", "?")
    dow_star = dow_star or parts[4] in ("*", "?")
    quartz_dows = tuple(sorted({d % 7 + 1 for d in dows}))  # Unix 0/7=SUN -> Quartz 1=SUN
    if dom_star and dow_star:
        dom_kind, dow_kind = DomKind.ANY, DowKind.ANY
    elif dow_star:
        dom_kind, dow_kind = DomKind.SET, DowKind.ANY
    elif dom_star:
        dom_kind, dow_kind = DomKind.ANY, DowKind.SET
    else:
        dom_kind, dow_kind = DomKind.SET, DowKind.SET
    return CronFields(
        dialect=Dialect.UNIX,
        text=" ".join(parts),
        seconds=(0,),
        minutes=tuple(sorted(mins)),
        hours=tuple(sorted(hrs)),
        months=tuple(sorted(mons)),
        years=None,
        dom_kind=dom_kind,
        dom_values=tuple(sorted(doms)),
        dow_kind=dow_kind,
        dow_values=quartz_dows,
        day_or=dom_kind is DomKind.SET and dow_kind is DowKind.SET,
    )
