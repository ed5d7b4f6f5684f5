"""docs/strategies.md: its example strategy is executed, registered through a real entry point."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from woow_scheduler.engine import registry
from woow_scheduler.engine.runner import run_steps
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.errors import InvalidWorkflow
from woow_scheduler.settings import load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "strategies.md"


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[None]:
    """Install the doc's example as a package with a dist-info entry point on sys.path."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(), flags=re.S)
    code = next(body for lang, body in blocks if lang == "python")
    toml = next(body for lang, body in blocks if lang == "toml")
    pkg = tmp_path / "my_package"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "strategies.py").write_text(code)
    dist = tmp_path / "my_package-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-package\nVersion: 0.1\n")
    # the TOML table -> entry_points.txt (same keys, values without TOML quotes)
    (dist / "entry_points.txt").write_text("[woow_scheduler.strategies]\n" + toml.split("\n", 1)[1].replace('"', ""))
    sys.path.insert(0, str(tmp_path))
    registry._entry_point_strategies.cache_clear()
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("my_package")]:
            del sys.modules[name]
        registry._entry_point_strategies.cache_clear()


def test_doc_example_strategy_registers_validates_and_runs(installed_plugin: None) -> None:
    settings = load_settings(database_url="sqlite:///:memory:")
    assert "greet" in registry.available_strategies()
    steps = registry.validate_steps([{"name": "hi", "type": "greet", "config": {"who": "world", "times": 2}}], settings)
    with pytest.raises(InvalidWorkflow, match=r"steps\[0\].config.times"):
        registry.validate_steps([{"name": "hi", "type": "greet", "config": {"who": "x", "times": 11}}], settings)
    out = run_steps(steps, settings=settings, workflow_id=uuid.uuid4(), workflow_name="docs", execution_id=uuid.uuid4())
    assert out.status is ExecutionStatus.SUCCEEDED
    assert out.steps[0]["output"] == {"greeting": "hello world hello world", "workflow": "docs"}
    bad = run_steps(
        [{"name": "hi", "type": "greet", "config": {"who": "nobody"}}],
        settings=settings,
        workflow_id=uuid.uuid4(),
        workflow_name="docs",
        execution_id=uuid.uuid4(),
    )
    assert bad.status is ExecutionStatus.FAILED and bad.steps[0]["output"] == {"who": "nobody"}
