"""A time zone of one's own for process-level tests: a TZif file with a fixed UTC offset of any
number of seconds, so a test can put a local midnight a few seconds ahead of now.

Children find it through ``PYTHONTZPATH`` (see :func:`tzpath_env`); the test process through
:func:`use_tzpath`.  The zone is an ordinary IANA-style name to the code under test.
"""

from __future__ import annotations

import os
import struct
import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _posix_offset(offset: int) -> str:
    """POSIX TZ offset text (west positive) of an offset in seconds east of UTC."""
    west = -offset
    sign = "-" if west < 0 else ""
    h, rest = divmod(abs(west), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}"


def write_fixed_zone(root: Path, name: str, offset: int) -> Path:
    """Write ``root/name`` as a TZif (v2) zone with the constant offset ``offset`` seconds east of UTC."""
    if not -86400 < offset < 86400:
        raise ValueError(f"offset {offset} must be within a day")
    abbr = b"TST\0"
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(abbr))  # isut, isstd, leap, time, type, char
    data = struct.pack(">lBB", offset, 0, 0) + abbr  # one ttinfo, no transitions
    header = b"TZif2" + bytes(15)
    footer = f"\nTST{_posix_offset(offset)}\n".encode()
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(header + counts + data + header + counts + data + footer)
    os.replace(tmp, path)
    return path


def tzpath_env(root: Path) -> dict[str, str]:
    """The environment that lets a child process find the zones under ``root`` (and the system's)."""
    return {"PYTHONTZPATH": os.pathsep.join([str(root), *zoneinfo.TZPATH])}


@contextmanager
def use_tzpath(root: Path) -> Iterator[None]:
    """In this process, zones under ``root`` are found too (the search path is restored after)."""
    before = zoneinfo.TZPATH
    zoneinfo.reset_tzpath([str(root), *before])
    try:
        yield
    finally:
        zoneinfo.reset_tzpath(list(before))
