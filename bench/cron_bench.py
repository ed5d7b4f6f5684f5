"""Next-fire computations per second: woow_scheduler.cron vs croniter on shared expressions.

    PYTHONPATH=. python bench/cron_bench.py [--quick] [--json]

Both libraries iterate successive fire times from the same start, in UTC and in
Europe/Berlin, over a mixed set of expressions that both understand (ours in Quartz syntax,
croniter's in its Unix syntax).  Each side runs for a fixed time per case; the rate is the
total number of fire times over the total time.  Target: ours >= 2x croniter.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from woow_scheduler.cron import CronExpression

# (Quartz expression, equivalent croniter expression)
CASES: list[tuple[str, str]] = [
    ("0 */5 * * * ?", "*/5 * * * *"),
    ("0 0 9 ? * MON-FRI", "0 9 * * 1-5"),
    ("0 30 2 1 * ?", "30 2 1 * *"),
    ("0 0 0 L * ?", "0 0 L * *"),
    ("0 15 10 ? * 6#3", "15 10 * * 5#3"),
    ("0 0 12 1,15 * ?", "0 12 1,15 * *"),
    ("0 0/20 8-18 ? * MON-FRI", "*/20 8-18 * * 1-5"),
    ("0 0 0 1 1 ?", "0 0 1 1 *"),
]
ZONES = ["UTC", "Europe/Berlin"]
START = datetime(2026, 1, 1, tzinfo=UTC)
# both iterations start over at START past this year: a yearly job iterated for seconds would
# otherwise run past datetime's year 9999 (croniter raises there)
WRAP_YEAR = 2400


def _rate(step: Any, seconds: float) -> tuple[int, float]:
    """Call step() in batches of 100 until `seconds` elapse; (calls, elapsed)."""
    n = 0
    began = time.perf_counter()
    deadline = began + seconds
    while True:
        for _ in range(100):
            step()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n, now - began


def _ours(quartz: str, tz: str, seconds: float) -> tuple[int, float]:
    expr = CronExpression(quartz, tz)
    state = {"t": START}

    def step() -> None:
        nxt = expr.next_after(state["t"])
        state["t"] = nxt if nxt is not None and nxt.year < WRAP_YEAR else START

    return _rate(step, seconds)


def _croniter(unix: str, tz: str, seconds: float) -> tuple[int, float]:
    start = START.astimezone(ZoneInfo(tz))
    holder = {"it": croniter(unix, start)}

    def step() -> None:
        if holder["it"].get_next(datetime).year >= WRAP_YEAR:
            holder["it"] = croniter(unix, start)

    return _rate(step, seconds)


def _check_agreement() -> None:
    """Sanity: both produce the same first fire times (else the comparison is meaningless)."""
    for quartz, unix in CASES:
        for tz in ZONES:
            ours = CronExpression(quartz, tz)
            it = croniter(unix, START.astimezone(ZoneInfo(tz)))
            t = START
            for _ in range(5):
                mine = ours.next_after(t)
                theirs = it.get_next(datetime)
                assert mine == theirs, (quartz, unix, tz, mine, theirs)
                assert mine is not None
                t = mine


def run(quick: bool = False) -> dict[str, Any]:
    _check_agreement()
    per_case = 0.12 if quick else 0.7
    ours_n = ours_s = theirs_n = theirs_s = 0.0
    cases = []
    for quartz, unix in CASES:
        for tz in ZONES:
            n1, s1 = _ours(quartz, tz, per_case)
            n2, s2 = _croniter(unix, tz, per_case)
            ours_n, ours_s, theirs_n, theirs_s = ours_n + n1, ours_s + s1, theirs_n + n2, theirs_s + s2
            cases.append(
                {
                    "quartz": quartz,
                    "croniter": unix,
                    "tz": tz,
                    "ours_per_s": round(n1 / s1),
                    "croniter_per_s": round(n2 / s2),
                    "ratio": round((n1 / s1) / (n2 / s2), 2),
                }
            )
    ours_rate = ours_n / ours_s
    theirs_rate = theirs_n / theirs_s
    return {
        "cron_next_per_s": round(ours_rate),
        "croniter_next_per_s": round(theirs_rate),
        "ratio": round(ours_rate / theirs_rate, 2),
        "target_ratio": 2.0,
        "cases": cases,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="about 5 s instead of about 25 s")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
        return 0
    print(f"{'expression':28} {'tz':14} {'ours/s':>9} {'croniter/s':>11} {'ratio':>6}")
    for c in result["cases"]:
        print(f"{c['quartz']:28} {c['tz']:14} {c['ours_per_s']:>9} {c['croniter_per_s']:>11} {c['ratio']:>6}")
    print(
        f"\nnext-fire computations per second: woow {result['cron_next_per_s']}, "
        f"croniter {result['croniter_next_per_s']}, ratio {result['ratio']}x (target >= 2x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
