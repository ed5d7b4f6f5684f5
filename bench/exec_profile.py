"""One process, no Celery: scheduled fires of a one-step ``log`` workflow run through
``woow_scheduler.worker.task.execute_workflow`` in a loop, timed per execution (wall and this
process's CPU), optionally under cProfile.

Runs the code that ``import woow_scheduler`` finds: for a before/after pair run it from each
checkout (``cd DIR && PYTHONPATH=$PWD python <this file>``); its workflows are seeded by that
checkout's ``bench.exec_bench.seed_workflows``.

    python bench/exec_profile.py [--n 3000] [--workflows 200] [--profile out.prof] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import logging
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import woow_scheduler
from bench.exec_bench import seed_workflows
from tests.support.stores import scratch_stores
from woow_scheduler.messaging.payload import FirePayload
from woow_scheduler.worker import get_app
from woow_scheduler.worker.task import execute_workflow


def run(n: int, workflows: int, profile: str | None, warm: int, cpu_timer: bool = False) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)
    with scratch_stores("woow_bench", queue="bench-prof", log_level="WARNING") as (settings, db, _client):
        pairs = [(wid, tid) for wid, _name, tid in seed_workflows(db, workflows)]
        app = get_app(settings)
        task = SimpleNamespace(app=app, request=SimpleNamespace(id="prof-task", retries=0))
        base = datetime(2030, 1, 1, tzinfo=UTC)
        payloads = [
            FirePayload(
                workflow_id=pairs[i % workflows][0],
                trigger_id=pairs[i % workflows][1],
                scheduled_for=base + timedelta(seconds=i),
            ).to_kwargs()
            for i in range(n + warm)
        ]
        for kw in payloads[:warm]:
            execute_workflow(task, kw)
        walls: list[float] = []
        gc_time = [0.0, 0.0, 0.0]
        gc_count = [0, 0, 0]
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gc_time[info["generation"]] += time.perf_counter() - gc_started[0]
                gc_count[info["generation"]] += 1

        gc.callbacks.append(on_gc)
        prof = (cProfile.Profile(time.process_time) if cpu_timer else cProfile.Profile()) if profile else None
        c0, t0, m0 = time.process_time(), time.perf_counter(), time.thread_time()
        if prof is not None:
            prof.enable()
        for kw in payloads[warm:]:
            s = time.perf_counter()
            out = execute_workflow(task, kw)
            walls.append(time.perf_counter() - s)
            assert out["outcome"] == "succeeded", out
        if prof is not None:
            prof.disable()
            prof.dump_stats(profile)  # type: ignore[arg-type]
        gc.callbacks.remove(on_gc)
        cpu, wall, main_cpu = time.process_time() - c0, time.perf_counter() - t0, time.thread_time() - m0
        db.dispose()
        app.close()
    return {
        "code": os.path.dirname(woow_scheduler.__file__),
        "n": n,
        "wall_us_mean": round(wall / n * 1e6),
        "wall_us_median": round(statistics.median(walls) * 1e6),
        "cpu_us_mean": round(cpu / n * 1e6),
        "main_thread_cpu_us_mean": round(main_cpu / n * 1e6),
        "gc_collections": gc_count,
        "gc_us_per_execution": [round(t / n * 1e6, 1) for t in gc_time],
        "load": open("/proc/loadavg").read().split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--warm", type=int, default=400, help="executions run before timing (every definition kept)")
    parser.add_argument("--workflows", type=int, default=200)
    parser.add_argument("--profile", default=None, help="write cProfile stats of the timed loop here")
    parser.add_argument("--cpu", action="store_true", help="profile with the process's CPU time as the clock")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args.n, args.workflows, args.profile, args.warm, args.cpu)
    if args.json:
        print(json.dumps(result))
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()), file=sys.stdout)


if __name__ == "__main__":
    main()
