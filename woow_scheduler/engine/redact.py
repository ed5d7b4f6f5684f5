"""Redaction of secrets (``settings.redact_keys``) in logs, stored step results and Flower args."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"
#: the password of a URL's user info: ``scheme://user:PASSWORD@host``
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+@")


def mask_url_passwords(text: str) -> str:
    """``text`` with every URL password replaced by ``***`` (``http://admin:***@host``)."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}@", text) if "@" in text else text


def _norm(key: str) -> str:
    return key.lower().replace("-", "_")


@functools.lru_cache(maxsize=64)
def _norm_keys(redact_keys: tuple[str, ...]) -> tuple[str, ...]:
    # normalised once per set of keys, not once per key looked at (every run walks its step configs)
    return tuple(_norm(k) for k in redact_keys if k)


def is_secret_key(key: Any, redact_keys: Iterable[str]) -> bool:
    """A key is secret when any redact key occurs in it (``X-Api-Key`` matches ``api_key``)."""
    if not isinstance(key, str):
        return False
    name = _norm(key)
    return any(k in name for k in _norm_keys(tuple(redact_keys)))


def redact(value: Any, redact_keys: Iterable[str]) -> Any:
    """A copy of ``value`` with the values of secret keys (at any depth) replaced by ``***``."""
    keys = tuple(redact_keys)
    return _redact(value, keys)


def _redact(value: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        return {k: (MASK if is_secret_key(k, keys) else _redact(v, keys)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, keys) for v in value]
    if isinstance(value, str):
        return mask_url_passwords(value)
    return value


def secret_values(value: Any, redact_keys: Iterable[str]) -> set[str]:
    """Every string (or number) stored under a secret key, to scrub from free text such as errors."""
    keys = tuple(redact_keys)
    found: set[str] = set()

    def walk(v: Any, secret: bool) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, secret or is_secret_key(k, keys))
        elif isinstance(v, list | tuple):
            for item in v:
                walk(item, secret)
        elif secret and isinstance(v, str | int | float) and not isinstance(v, bool):
            text = str(v)
            if len(text) >= 4:  # masking "1" everywhere would wreck the text and hide nothing
                found.add(text)

    walk(value, False)
    return found


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret value and URL password replaced by ``***`` (longest first)."""
    for s in sorted(secrets, key=len, reverse=True):
        if s in text:
            text = text.replace(s, MASK)
    return mask_url_passwords(text)


def scrub_any(value: Any, secrets: set[str]) -> Any:
    """Scrub secret values out of every string inside a JSON-like value."""
    if not secrets:
        return value
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, Mapping):
        return {k: scrub_any(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_any(v, secrets) for v in value]
    return value
