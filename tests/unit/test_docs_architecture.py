"""docs/architecture.md names only modules that exist, and tells the fire's path in code order."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"\b((?:woow_scheduler|tests|bench)/[\w/]*[\w.]*)")


def named_paths(text: str) -> list[str]:
    return [m.rstrip(".") for m in PATH.findall(text)]


def test_every_module_path_the_architecture_names_exists() -> None:
    names = named_paths(DOC.read_text(encoding="utf-8"))
    assert len(set(names)) >= 30
    missing = sorted({n for n in names if not (ROOT / n).exists()})
    assert not missing


def test_the_check_catches_a_missing_module() -> None:
    assert named_paths("see `woow_scheduler/scheduler/nowhere.py` and woow_scheduler/db/.") == [
        "woow_scheduler/scheduler/nowhere.py",
        "woow_scheduler/db/",
    ]
    assert not (ROOT / "woow_scheduler/scheduler/nowhere.py").exists()


def test_the_fire_path_is_numbered_in_the_order_the_code_runs() -> None:
    text = DOC.read_text(encoding="utf-8").split("## One fire, in the order the code runs", 1)[1]
    steps = [int(n) for n in re.findall(r"^\s*(\d+)\. \*\*", text, flags=re.M)]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 8
    order = ["service/triggers.py", "db/trigger_state.py", "scheduler/sync.py", "scheduler/beat.py",
             "messaging/payload.py", "scheduler/bookkeeping.py", "worker/task.py", "engine/runner.py"]
    firsts = [text.index(name) for name in order]
    assert firsts == sorted(firsts)
