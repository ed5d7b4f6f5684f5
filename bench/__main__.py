"""``python -m bench [--quick] [--json]``: every benchmark beside its baseline, in one run.

Uses WOOW_TEST_DATABASE_URL / WOOW_TEST_REDIS_URL (as the tests do); each benchmark creates and
drops its own database and Redis key prefix.  ``--quick`` scales counts down (about 2 minutes).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from typing import Any

# (module, what it measures, {result key: target description})
BENCHES: list[tuple[str, str]] = [
    ("bench.cron_bench", "cron next-fire vs croniter"),
    ("bench.sync_bench", "full sync of triggers vs RedBeat pipelined"),
    ("bench.dispatch_bench", "10k due in one second vs plain RedBeat"),
    ("bench.lateness_bench", "fire lateness, seconds-resolution triggers"),
    ("bench.exec_bench", "end-to-end executions vs bare Celery"),
]

PER_BENCH_KEYS = {
    "ratio",
    "target_ratio",
    "cases",
    "messages",
    "succeeded",
    "skipped",
    "rounds",
    "round_rates",
    "median_round_ratio",
}

RATIOS = {
    "cron_vs_croniter": ("cron_next_per_s", "croniter_next_per_s", "higher is better; target >= 2"),
    "sync_vs_redbeat": ("sync_100k_s", "redbeat_pipelined_100k_s", "lower is better; target <= 2"),
    "dispatch_vs_redbeat": ("dispatch_10k_s", "redbeat_dispatch_10k_s", "lower is better; target <= 1.5"),
    "exec_vs_bare_celery": ("exec_per_s", "bare_celery_per_s", "higher is better; target >= 0.5"),
}


def machine() -> dict[str, Any]:
    mem_gib = None
    try:
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
            mem_gib = round(kib / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scaled-down counts (about 2 minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", action="append", default=None, help="run only these modules (e.g. cron_bench)")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {"quick": args.quick, "machine": machine()}
    details: dict[str, Any] = {}
    failures: list[str] = []
    for module_name, what in BENCHES:
        if args.only and module_name.split(".")[-1] not in args.only:
            continue
        started = time.monotonic()
        print(f"bench: {module_name} — {what} ...", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(module_name)
            out = module.run(quick=args.quick)
            # each bench's own extras ("ratio", "cases", ...) stay under its name; the named metrics
            # (cron_next_per_s, sync_100k_s, ...) are unique and also go to the top level
            details[module_name.split(".")[-1]] = out
            results.update({k: v for k, v in out.items() if k not in PER_BENCH_KEYS})
        except Exception as exc:  # report and go on: one broken bench must not hide the others
            failures.append(f"{module_name}: {exc}")
            print(f"bench: {module_name} FAILED: {exc}", file=sys.stderr, flush=True)
        print(f"bench: {module_name} took {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)

    ratios = {}
    for name, (ours, base, _) in RATIOS.items():
        if isinstance(results.get(ours), (int, float)) and results.get(base):
            ratios[name] = round(results[ours] / results[base], 3)
    results["ratios"] = ratios
    results["details"] = details
    results["failures"] = failures

    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        width = max(len(k) for k in results)
        for key, value in results.items():
            if key in {"ratios", "machine", "failures", "details"}:
                continue
            print(f"{key.ljust(width)}  {value}")
        print()
        for name, value in ratios.items():
            print(f"{name.ljust(24)} {value:>8}   ({RATIOS[name][2]})")
        for f in failures:
            print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
