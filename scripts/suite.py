#!/usr/bin/env python3
"""Run the test suite of ``make test`` as two pytest processes side by side.

    python scripts/suite.py [pytest options]

The reduced chaos scenarios (tests/chaos, about half of the suite's time) spend most of it waiting
for fires of real beat and worker processes; the rest of the suite is mostly CPU.  Run one after
the other they took 16.5 minutes on the 2-core CI machine; side by side the suite takes the time
of the longer of the two.  Every test isolates itself (its own database, Redis key prefix, vhost,
servers on free ports), so the two streams cannot see each other's state.

- stream "main": ``pytest -m "not chaos" --ignore=tests/chaos``, its output shown as it runs;
- stream "chaos": ``pytest -m "not chaos" tests/chaos`` (the reduced scenarios; full sizes are
  ``make chaos``), its output kept in ``.suite-chaos-<pid>.log`` and shown (then removed) when it
  ends.

Options are passed to both.  When they name a test path (``make test PYTEST_ARGS=tests/unit``),
one plain pytest runs instead.  The exit code is the first non-zero one of the two streams, or 0;
a stream that collected nothing (pytest's 5, e.g. ``-k`` matching only the other one's tests)
counts as passed as long as the other collected something.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_TESTS_COLLECTED = 5


def _names_a_path(args: list[str]) -> bool:
    return any(not a.startswith("-") and (ROOT / a.split("::")[0]).exists() for a in args)


def main(argv: list[str]) -> int:
    pytest = [sys.executable, "-m", "pytest", "-m", "not chaos"]
    if _names_a_path(argv):
        return subprocess.call([*pytest, *argv], cwd=ROOT)
    started = time.monotonic()
    chaos_log = ROOT / f".suite-chaos-{os.getpid()}.log"
    with chaos_log.open("w") as log:
        chaos = subprocess.Popen([*pytest, *argv, "tests/chaos"], cwd=ROOT, stdout=log,
                                 stderr=subprocess.STDOUT)
        print(f"suite: reduced chaos scenarios run beside the rest (pid {chaos.pid}, output in {chaos_log.name})",
              flush=True)
        try:
            main_rc = subprocess.call([*pytest, *argv, "--ignore=tests/chaos"], cwd=ROOT)
            chaos_rc = chaos.wait()
        except KeyboardInterrupt:
            chaos.send_signal(signal.SIGINT)
            chaos.wait()
            raise
    print(f"\n===== suite: reduced chaos scenarios (exit {chaos_rc}) =====", flush=True)
    sys.stdout.write(chaos_log.read_text(errors="replace"))
    chaos_log.unlink()
    print(f"suite: both streams done in {time.monotonic() - started:.0f} s "
          f"(main exit {main_rc}, chaos exit {chaos_rc})", flush=True)
    codes = [main_rc, chaos_rc]
    if codes == [NO_TESTS_COLLECTED, NO_TESTS_COLLECTED]:
        return NO_TESTS_COLLECTED
    failing = [c for c in codes if c not in (0, NO_TESTS_COLLECTED)]
    return failing[0] if failing else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main(sys.argv[1:]))
