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
    assert {"create_workflow", "add_trigger", "apply", "history", "counts", "run_workflow"} <= set(dir(Service))
    code = "import woow_scheduler.worker as w; print(type(w.app).__name__, sorted(w.app.tasks)[-1])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["Celery", "woow.execute_workflow"]


# A write of a trigger's schedule state: an ORM attribute assignment (``tr.state = ...``), a keyword
# in an UPDATE's ``.values(...)`` or a constructor (``state=TriggerState.X``, ``fire_count=bindparam(...)``).
_FACTS = r"(?:state|next_fire_time|previous_fire_time|fire_count)"
_WRITES = (
    re.compile(rf"(?<!self)\.{_FACTS}\s*=(?!=)"),
    re.compile(rf"\b{_FACTS}\s*=\s*(?:TriggerState\b|bindparam\(|t\.c\.|None\b|Trigger\.)"),
    re.compile(rf"[\"']{_FACTS}[\"']\s*:\s*(?:TriggerState\b|bindparam\(|None\b)"),
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
    (tmp_path / "mapping.py").write_text("stmt.values({'state': TriggerState.COMPLETE.value})\n")
    (tmp_path / "reader.py").write_text("if tr.state == TriggerState.NORMAL:\n    self.state = state\n")
    assert _writers(tmp_path) == {"orm.py", "sql.py", "count.py", "mapping.py"}


ROOT = PACKAGE.parent


def test_benchmarks_import_only_the_test_support_package() -> None:
    offenders = set()
    for path in sorted((ROOT / "bench").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "sys.path" in text:
            offenders.add(f"{path.name}: edits sys.path")
        for name in _imported_modules(path, "bench"):
            if (name == "tests" or name.startswith("tests.")) and not name.startswith("tests.support"):
                offenders.add(f"{path.name}: {name}")
    assert not offenders


def test_tests_do_not_import_the_benchmarks() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "tests").rglob("*.py"))
        for name in _imported_modules(path, "tests")
        if name == "bench" or name.startswith("bench.")
    }
    assert not offenders


def test_one_free_port_and_one_make_trigger() -> None:
    """Defined once (a pytest fixture of the same name that binds the helper to a test's database
    is not a second definition)."""
    defined: dict[str, list[str]] = {"free_port": [], "make_trigger": []}
    for top in ("woow_scheduler", "tests", "bench", "scripts"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.FunctionDef)
                    and node.name in defined
                    and node.col_offset == 0
                    and not node.decorator_list
                ):
                    defined[node.name].append(str(path.relative_to(ROOT)))
    assert defined == {"free_port": ["woow_scheduler/cli/dev.py"], "make_trigger": ["tests/support/factories.py"]}


def test_the_package_root_exports_the_public_api_without_celery() -> None:
    loaded = _loaded_after(
        "from woow_scheduler import Service, Settings, TaskStrategy, WoowError, load_settings\n"
        "assert issubclass(TaskStrategy, object) and issubclass(WoowError, Exception)"
    )
    assert {"woow_scheduler.service", "woow_scheduler.engine.base"} <= loaded
    assert not {m for m in loaded if m.split(".")[0] in {"celery", "kombu", "redbeat"}}
    assert sorted(woow_scheduler.__all__) == sorted(woow_scheduler._EXPORTS)
    from woow_scheduler.errors import WoowError
    from woow_scheduler.service import Service

    assert woow_scheduler.WoowError is WoowError and woow_scheduler.Service is Service


def test_manual_runs_go_through_the_service() -> None:
    for front in ("cli", "api"):
        for path in sorted((PACKAGE / front).rglob("*.py")):
            assert "enqueue_manual_run" not in path.read_text(encoding="utf-8"), path


def test_nothing_imports_the_root_conftest() -> None:
    """The root conftest only holds fixtures: what tests and benchmarks share lives in tests.support."""
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for top in ("tests", "bench")
        for path in sorted((ROOT / top).rglob("*.py"))
        for name in _imported_modules(path, ".".join(path.relative_to(ROOT).parent.parts))
        if name == "tests.conftest" or name.startswith("tests.conftest.")
    }
    assert not offenders
