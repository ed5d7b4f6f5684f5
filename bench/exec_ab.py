"""Before/after of the execution path: bare Celery, then the worker of checkout A, then of checkout B, interleaved.

Each round publishes the same kind of fires as ``bench.exec_bench`` and times three fresh prefork
workers (``--concurrency`` processes each, default 2) on the same broker and database: a bare
no-op, a worker started in checkout ``--before`` and one started in checkout ``--after`` (the
order alternates every round: bare, A, B, then B, A, bare).  Each exec rate is divided by the
bare rate of its round, so both checkouts are judged under the same drift of a shared machine.
Make the checkouts with ``git worktree add`` or ``git archive <commit> | tar -x -C <dir>``; the
harness itself (this file, the stores, the publishing) runs from the current directory.

    python -m bench.exec_ab --before DIR --after DIR [--rounds 5] [--n 1000] [--concurrency 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import exec_bench as eb
from bench._guard import NoWork, check_one_source, require
from tests.support.stores import scratch_stores
from woow_scheduler.worker import get_app


def run(before: Path, after: Path, rounds: int, n: int, concurrency: int = eb.DEFAULT_CONCURRENCY) -> dict[str, Any]:
    require(n > 0 and rounds > 0, f"exec_ab: {rounds} rounds of {n} messages asked for: no work to measure")
    for d in (before, after):
        require((d / "woow_scheduler" / "worker" / "task.py").is_file(), f"exec_ab: {d} is not a woow checkout")
    log_dir = Path(tempfile.mkdtemp(prefix="woow-ab-"))
    rates: dict[str, list[float]] = {"bare": [], "before": [], "after": []}
    dirs = {"before": before, "after": after}
    with scratch_stores("woow_bench", queue="bench", log_level="WARNING") as (settings, db, client):
        pairs = eb.seed_workflows(db)
        app = get_app(settings)
        published = fired = 0
        try:
            for r in range(rounds):
                order = ["bare", "before", "after"] if r % 2 == 0 else ["after", "before", "bare"]
                for kind in order:
                    if kind == "bare":
                        eb._publish_noops(app, settings, n)
                        rates[kind].append(eb._drain_rate(client, settings, n, log_dir, f"bare{r}")[0])
                        continue
                    eb._publish_fires(app, settings, pairs, n, published)
                    published += n
                    per_s, done_now = eb._drain_rate(
                        client, settings, n, log_dir, f"{kind}{r}", dirs[kind], concurrency=concurrency
                    )
                    rates[kind].append(per_s)
                    fired += done_now  # a fire given back at the worker's shutdown and removed never ran
                    done = eb._finished(db)
                    require(done == fired, f"{kind}{r}: {done} of {fired} fires left a finished execution row")
                b = rates["bare"][-1]
                print(
                    f"exec_ab: round {r + 1}/{rounds}: bare {b:.1f}/s, before {rates['before'][-1]:.1f}/s "
                    f"({rates['before'][-1] / b:.3f}), after {rates['after'][-1]:.1f}/s ({rates['after'][-1] / b:.3f})",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            db.dispose()
            app.close()
    both = list(zip(rates["after"], rates["before"], strict=True))
    ratios = {k: [e / b for e, b in zip(rates[k], rates["bare"], strict=True)] for k in ("before", "after")}
    return {
        "rounds": rounds,
        "messages": n,
        "concurrency": concurrency,
        "before_round_ratios": [round(x, 3) for x in ratios["before"]],
        "after_round_ratios": [round(x, 3) for x in ratios["after"]],
        "before_ratio": round(statistics.median(ratios["before"]), 3),
        "after_ratio": round(statistics.median(ratios["after"]), 3),
        "after_vs_before": round(statistics.median(a / b for a, b in both), 3),
        "after_faster_rounds": sum(a > b for a, b in both),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="checkout of the code before the change")
    parser.add_argument("--after", type=Path, required=True, help="checkout of the code after the change")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--n", type=int, default=1000, help="messages per worker and round (default 1000)")
    parser.add_argument(
        "--concurrency", type=int, default=eb.DEFAULT_CONCURRENCY, help="pool processes of every worker (default 2)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        check_one_source()
        result = run(args.before.resolve(), args.after.resolve(), args.rounds, args.n, args.concurrency)
    except NoWork as exc:
        print(f"exec_ab: no figure: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.json:
        print(json.dumps(result))
        return
    print(f"before: median ratio {result['before_ratio']:.3f}  rounds {result['before_round_ratios']}")
    print(f"after : median ratio {result['after_ratio']:.3f}  rounds {result['after_round_ratios']}")
    print(
        f"after/before per round: median {result['after_vs_before']:.3f}; "
        f"after faster in {result['after_faster_rounds']} of {result['rounds']} rounds"
    )


if __name__ == "__main__":
    main()
