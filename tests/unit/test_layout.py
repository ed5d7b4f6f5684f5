"""The package layout's promises: the scheduler never reaches into the worker, the use cases do not
load Celery, and the paths deployments name still import."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import woow_scheduler

PACKAGE = Path(woow_scheduler.__file__).parent


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved, lazy ones too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = package.split(".")
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_no_scheduler_module_imports_the_worker() -> None:
    files = sorted((PACKAGE / "scheduler").glob("*.py"))
    assert len(files) >= 6
    offenders = {
        f"{path.name}: {name}"
        for path in files
        for name in _imported_modules(path, "woow_scheduler.scheduler")
        if name == "woow_scheduler.worker" or name.startswith("woow_scheduler.worker.")
    }
    assert not offenders


def test_the_ast_walk_sees_a_relative_worker_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..worker.lock import split_value\n    from .. import worker\n")
    names = _imported_modules(probe, "woow_scheduler.scheduler")
    assert "woow_scheduler.worker.lock" in names
    assert "woow_scheduler.worker" in names


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


def test_importing_the_beat_does_not_load_the_worker() -> None:
    loaded = _loaded_after("import woow_scheduler.scheduler.beat, woow_scheduler.scheduler.sync")
    assert "woow_scheduler.scheduler.beat" in loaded
    assert not {m for m in loaded if m == "woow_scheduler.worker" or m.startswith("woow_scheduler.worker.")}


def test_importing_the_service_does_not_load_celery() -> None:
    loaded = _loaded_after("import woow_scheduler.service")
    assert "woow_scheduler.service" in loaded
    assert not {m for m in loaded if m.split(".")[0] in {"celery", "kombu", "redbeat"}}


def test_the_paths_deployments_name_still_import() -> None:
    from woow_scheduler.beat import WoowScheduler
    from woow_scheduler.scheduler.beat import WoowScheduler as Real
    from woow_scheduler.service import Service, WorkflowInput, spec_from_stored

    assert WoowScheduler is Real
    assert callable(spec_from_stored) and WorkflowInput.model_fields["name"]
    assert {"create_workflow", "add_trigger", "apply", "history", "counts"} <= set(dir(Service))
    code = "import woow_scheduler.worker as w; print(type(w.app).__name__, sorted(w.app.tasks)[-1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["Celery", "woow.execute_workflow"]


# A write of a trigger's schedule state: an ORM attribute assignment (``tr.state = ...``), a keyword
# in an UPDATE's ``.values(...)`` or a constructor (``state=TriggerState.X``, ``fire_count=bindparam(...)``).
_FACTS = r"(?:state|next_fire_time|previous_fire_time|fire_count)"
_WRITES = (
    re.compile(rf"(?<!self)\.{_FACTS}\s*=(?!=)"),
    re.compile(rf"\b{_FACTS}\s*=\s*(?:TriggerState\b|bindparam\(|t\.c\.|None\b|Trigger\.)"),
)


def _writers(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if any(p.search(text) for p in _WRITES):
            found.add(path.relative_to(root).as_posix())
    return found


def test_one_module_writes_trigger_state() -> None:
    assert _writers(PACKAGE) == {"db/trigger_state.py"}


def test_the_writer_grep_sees_orm_and_sql_writes(tmp_path: Path) -> None:
    (tmp_path / "orm.py").write_text("tr.state = TriggerState.COMPLETE\n")
    (tmp_path / "sql.py").write_text("update(t).values(state=TriggerState.COMPLETE.value)\n")
    (tmp_path / "count.py").write_text("stmt.values(fire_count=bindparam('_count'))\n")
    (tmp_path / "reader.py").write_text("if tr.state == TriggerState.NORMAL:\n    self.state = state\n")
    assert _writers(tmp_path) == {"orm.py", "sql.py", "count.py"}
