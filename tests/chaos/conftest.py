"""Chaos fixtures (own Redis and PostgreSQL per scenario) and the summary table of every scenario run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import accounting as acc
from tests.chaos.harness import ChaosEnv
from tests.support.servers import RedisServer, throwaway_postgres

RESULTS_FILE = ".chaos-results.json"
COLUMNS = (
    ("scenario", "scenario"),
    ("size", "size"),
    ("fires_expected", "fires expected"),
    ("ran_once", "ran once"),
    ("duplicated", "duplicated"),
    ("lost", "lost"),
    ("skipped_by_policy", "skipped by policy"),
    ("lock_lost", "lock lost"),
    ("recovery_s", "recovery (s)"),
)


@pytest.fixture
def chaos_env(tmp_path: Path) -> Iterator[ChaosEnv]:
    """A scenario's own PostgreSQL and Redis (free ports, temp dirs) and the processes it starts."""
    with throwaway_postgres() as pg:
        server = RedisServer(tmp_path / "redis").start()
        env = ChaosEnv(pg, server, tmp_path)
        try:
            yield env
        finally:
            env.close()
            server.kill()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def format_table(rows: list[dict[str, Any]]) -> list[str]:
    header = [title for _, title in COLUMNS]
    body = [[_fmt(r.get(key)) for key, _ in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [line, sep]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) + " |" for b in body]
    return out


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not acc.RESULTS:
        return
    tr = terminalreporter
    tr.section("chaos summary")
    for line in format_table(acc.RESULTS):
        tr.write_line(line)
    for r in acc.RESULTS:
        extra = {k: v for k, v in r.get("extra", {}).items() if v not in (None, {}, [])}
        details = {
            k: r[k]
            for k in (
                "skipped_concurrency",
                "skipped_misfire",
                "failed",
                "lock_lost",
                "spurious",
                "overlaps",
                "late_beyond_policy",
            )
            if r.get(k)
        }
        tr.write_line(f"{r['scenario']}/{r['size']}: {json.dumps({**details, **extra}, sort_keys=True)}")
    path = Path(config.rootpath) / RESULTS_FILE
    path.write_text(json.dumps(acc.RESULTS, indent=2, default=str) + "\n")
    tr.write_line(f"written to {path}")
