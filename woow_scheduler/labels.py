"""Labels: ``key=value`` pairs on workflows and triggers that group them (pure; validation only)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidInput

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,62}$")
_VALUE = re.compile(r"^[A-Za-z0-9_.\-:@/ ]{0,200}$")
MAX_LABELS = 32


def check_labels(value: Any, field: str = "labels") -> dict[str, str]:
    """A validated copy of a labels mapping (string keys and values)."""
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{field}: {value!r} must be a mapping of key to value", field=field)
    if len(value) > MAX_LABELS:
        raise InvalidInput(f"{field}: at most {MAX_LABELS} labels", field=field)
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _KEY.match(k):
            raise InvalidInput(
                f"{field}: key {k!r} must be 1-63 letters, digits and _ . - / starting with a letter or digit",
                field=field,
            )
        if not isinstance(v, str) or not _VALUE.match(v):
            raise InvalidInput(f"{field}: value {v!r} of '{k}' must be at most 200 plain characters", field=field)
        out[k] = v
    return out


def parse_label_args(items: Iterable[str], field: str = "label") -> dict[str, str]:
    """['team=finance', 'tier=1'] -> {'team': 'finance', 'tier': '1'}."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"{field}: '{item}' must be KEY=VALUE, e.g. team=finance", field=field)
        pairs[key.strip()] = value.strip()
    return check_labels(pairs, field)


def matches(labels: Mapping[str, str] | None, wanted: Mapping[str, str]) -> bool:
    """Whether every wanted pair is among the labels."""
    have = labels or {}
    return all(have.get(k) == v for k, v in wanted.items())
