"""A short English description of a parsed expression: 'at 09:00:00, Monday through Friday'."""

from __future__ import annotations

from itertools import pairwise

from woow_scheduler.cron.fields import CronFields, Dialect, DomKind, DowKind

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_ORDINALS = ("first", "second", "third", "fourth", "fifth")


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _runs(values: tuple[int, ...], span: int | None = None) -> list[tuple[int, int]]:
    """Contiguous runs; with span (cyclic fields) a run may wrap from the top to the bottom."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    if span is not None and len(runs) > 1 and runs[0][0] == 1 and runs[-1][1] == span:
        first = runs.pop(0)
        runs[-1][1] = first[1]
    return [(a, b) for a, b in runs]


def _list(values: tuple[int, ...], name: object = str, span: int | None = None) -> str:
    label = name if callable(name) else str
    parts = []
    for a, b in _runs(values, span):
        if a == b:
            parts.append(label(a))
        elif b == a + 1:
            parts.extend([label(a), label(b)])
        else:
            parts.append(f"{label(a)} through {label(b)}")
    return _join(parts)


def _step(values: tuple[int, ...], lo: int, hi: int) -> int | None:
    """N when values are lo, lo+N, lo+2N ... up to hi (a '*/N' field)."""
    if len(values) < 2 or values[0] != lo:
        return None
    step = values[1] - values[0]
    if any(b - a != step for a, b in pairwise(values)) or values[-1] + step <= hi:
        return None
    return step


def _unit(values: tuple[int, ...], lo: int, hi: int, unit: str) -> str:
    if len(values) == hi - lo + 1:
        return f"every {unit}"
    step = _step(values, lo, hi)
    if step is not None:
        return f"every {step} {unit}s"
    return f"at {unit}s {_list(values)}" if len(values) > 1 else f"at {unit} {values[0]}"


def _time(f: CronFields) -> str:
    s, m, h = f.seconds, f.minutes, f.hours
    if len(s) == 1 and len(m) == 1:
        if len(h) <= 4:
            return "at " + _join([f"{hh:02d}:{m[0]:02d}:{s[0]:02d}" for hh in h])
        clock = f"at minute {m[0]}" + (f", second {s[0]}" if s[0] else "")
        if len(h) == 24:
            return f"every hour {clock}"
        return f"{clock} of hours {_list(h)}"
    if len(s) == 1:
        text = _unit(m, 0, 59, "minute")
        if s[0]:
            text += f", at second {s[0]}"
    else:
        text = _unit(s, 0, 59, "second")
        if len(m) < 60:
            text += f", minutes {_list(m)}"
    if len(h) < 24:
        text += f", hours {_list(h)}"
    return text


def _dow_name(v: int) -> str:
    return _DAYS[v - 1]


def _days(f: CronFields) -> str:
    dom = ""
    if f.dom_kind is DomKind.SET:
        plural = "day" if len(f.dom_values) == 1 else "days"
        dom = f"on {plural} {_list(f.dom_values)} of the month"
    elif f.dom_kind is DomKind.LAST:
        dom = "on the last day of the month"
        if f.dom_offset:
            dom = f"{f.dom_offset} day{'s' if f.dom_offset > 1 else ''} before the last day of the month"
    elif f.dom_kind is DomKind.LAST_WEEKDAY:
        dom = "on the last weekday of the month"
        if f.dom_offset:
            dom = f"on the weekday nearest {f.dom_offset} days before the last day of the month"
    elif f.dom_kind is DomKind.NEAREST:
        dom = f"on the weekday nearest day {f.dom_values[0]} of the month"
    dow = ""
    if f.dow_kind is DowKind.SET:
        dow = _list(f.dow_values, _dow_name, 7)
        if len(f.dow_values) < 3 or "through" not in dow:
            dow = "on " + dow
    elif f.dow_kind is DowKind.LAST:
        dow = f"on the last {_dow_name(f.dow_values[0])} of the month"
    elif f.dow_kind is DowKind.NTH:
        dow = f"on the {_ORDINALS[f.dow_nth - 1]} {_dow_name(f.dow_values[0])} of the month"
    if dom and dow:
        return f"{dom} or {dow}"
    return dom or dow or "every day"


def describe(f: CronFields) -> str:
    parts = [_time(f), _days(f)]
    if len(f.months) < 12:
        parts.append("in " + _list(f.months, lambda v: _MONTHS[v - 1], 12))
    if f.years is not None:
        parts.append("in " + _list(f.years))
    text = ", ".join(parts)
    return text + " (Unix cron)" if f.dialect is Dialect.UNIX else text
