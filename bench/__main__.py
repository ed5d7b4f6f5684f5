"""``python -m bench [--quick] [--json]``: every benchmark beside its baseline, in one run.

Uses WOOW_TEST_DATABASE_URL / WOOW_TEST_REDIS_URL (as the tests do) and nothing else: any other
WOOW_* variable in the environment is refused.  Each benchmark creates and drops its own database
and Redis key prefix.  ``--quick`` scales counts down (about 2 minutes).  A benchmark that saw no
work reports no figure: one line on stderr and exit 1.
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

from ._guard import NoWork, check_one_source

# (module, what it measures, {result key: target description})
BENCHES: list[tuple[str, str]] = [
    ("bench.cron_bench", "cron next-fire vs croniter"),
    ("bench.sync_bench", "full sync of triggers vs RedBeat pipelined"),
    ("bench.dispatch_bench", "N fires due in one second vs plain RedBeat"),
    ("bench.burst_bench", "a burst of N fires due in one second, 5 s beat lock, vs plain RedBeat"),
    ("bench.lateness_bench", "fire lateness, seconds-resolution triggers, vs plain RedBeat at the larger count"),
    ("bench.idle_bench", "beat's CPU while idle with N entries vs plain RedBeat's"),
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

# ratio name: (our figure, its baseline from the same run, how to read it)
RATIOS = {
    "cron_vs_croniter": ("cron_next_per_s", "croniter_next_per_s", "higher is better; target >= 2"),
    "sync_vs_redbeat": ("sync_s", "redbeat_pipelined_s", "lower is better; target <= 2"),
    "dispatch_vs_redbeat": ("dispatch_s", "redbeat_dispatch_s", "lower is better; target <= 1.5"),
    "burst_vs_redbeat": ("burst_per_s", "redbeat_burst_per_s", "higher is better; target >= 10"),
    "exec_vs_bare_celery": ("exec_per_s", "bare_celery_per_s", "higher is better; target >= 0.6"),
    "lateness_big_p99_vs_redbeat": (
        "lateness_big_p99_ms",
        "redbeat_lateness_big_p99_ms",
        "lower is better; target: lateness_10k_p99_ms <= 100",
    ),
    "bytes_per_entry_vs_redbeat": ("sync_bytes_per_entry", "redbeat_bytes_per_entry", "lower is better; reported"),
    "idle_cpu_vs_redbeat": ("idle_cpu_pct", "redbeat_idle_cpu_pct", "lower is better; reported"),
    "sync_300k_vs_redbeat": ("sync_300k_s", "redbeat_pipelined_300k_s", "lower is better; reported"),
}
# figures with no baseline in the same run: printed beside their target
ABSOLUTE = {
    "lateness_p50_ms": "target <= 5 ms (no same-run baseline: an absolute time, takes any machine load in full)",
    "lateness_p99_ms": "target <= 20 ms (no same-run baseline: an absolute time, takes any machine load in full)",
    "burst_lock_held": "target: True (the 5 s beat lock held through the whole burst)",
    "lateness_10k_p99_ms": "target <= 100 ms (10,000 triggers, 1,000 fires/s; RedBeat's beside it above)",
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
    try:
        check_one_source()
    except NoWork as exc:
        print(f"bench: no figure: {exc}", file=sys.stderr, flush=True)
        return 2

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
        except NoWork as exc:  # saw no work: no figure of it, the others still run
            failures.append(f"{module_name}: no figure: {exc}")
            print(f"bench: {module_name}: no figure: {exc}", file=sys.stderr, flush=True)
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
        # each figure beside its baseline from this run (or its target when it has none), then the rest
        shown: set[str] = set()
        for name, (ours, base, how) in RATIOS.items():
            if name in ratios:
                print(f"{name:22} {ours} {results[ours]}  vs  {base} {results[base]}  =  {ratios[name]}  ({how})")
                shown.update((ours, base))
        for key, target in ABSOLUTE.items():
            if key in results:
                print(f"{key:22} {results[key]}  ({target})")
                shown.add(key)
        print()
        rest = [k for k in results if k not in shown and k not in {"ratios", "machine", "failures", "details"}]
        width = max((len(k) for k in rest), default=0)
        for key in rest:
            print(f"{key.ljust(width)}  {results[key]}")
        for f in failures:
            print(f"FAILED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
