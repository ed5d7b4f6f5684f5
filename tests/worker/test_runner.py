"""The step runner and the built-in strategies (config validation included)."""

from __future__ import annotations

import sys
import uuid
from typing import Any

import pytest

from tests.worker.httpserver import scripted_server
from woow_scheduler.engine.registry import available_strategies, validate_steps
from woow_scheduler.engine.runner import OUTPUT_CAP, RunOutcome, cap_output, run_steps
from woow_scheduler.enums import ExecutionStatus
from woow_scheduler.errors import InvalidWorkflow
from woow_scheduler.permissions import ALL_PRIVILEGES
from woow_scheduler.settings import Settings, load_settings


@pytest.fixture
def st() -> Settings:
    return load_settings(
        database_url="sqlite:///:memory:",
        python_callables=[
            "tests.worker.callables:add",
            "tests.worker.callables:fail_with",
            "tests.worker.callables:with_context",
            "tests.worker.callables:hold_gil",
            "tests.worker.callables:catastrophic_regex",
        ],
    )


def run(steps: list[dict[str, Any]], settings: Settings, **kw: Any) -> RunOutcome:
    # no workflow row behind these runs: the owner is an operator (every privilege)
    kw.setdefault("privileges", ALL_PRIVILEGES)
    return run_steps(
        steps, settings=settings, workflow_id=uuid.uuid4(), workflow_name="wf", execution_id=uuid.uuid4(), **kw
    )


def invalid(steps: list[dict[str, Any]], settings: Settings) -> str:
    with pytest.raises(InvalidWorkflow) as info:
        validate_steps(steps, settings)
    return str(info.value)


def test_builtins_are_registered() -> None:
    assert {"log", "sleep", "http", "python", "shell", "celery_task"} <= set(available_strategies())


def test_steps_run_in_order_and_see_earlier_outputs(st: Settings) -> None:
    out = run(
        [
            {"name": "a", "type": "python", "config": {"callable": "tests.worker.callables:add", "args": [1, 2]}},
            {"name": "b", "type": "log", "config": {"message": "done"}},
        ],
        st,
    )
    assert out.status is ExecutionStatus.SUCCEEDED
    assert [s["name"] for s in out.steps] == ["a", "b"]
    assert out.steps[0]["output"] == {"sum": 3}
    assert out.outputs["a"] == {"sum": 3}
    assert set(out.steps[0]) == {
        "name",
        "type",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "output",
        "error",
    }


def test_failure_stops_the_run_unless_continue_on_error(st: Settings) -> None:
    fail = {"type": "python", "config": {"callable": "tests.worker.callables:fail_with", "args": ["boom"]}}
    out = run([{"name": "x", **fail}, {"name": "y", "type": "log", "config": {"message": "m"}}], st)
    assert out.status is ExecutionStatus.FAILED
    assert out.error == "step 'x' (python) failed: RuntimeError: boom"
    assert [s["status"] for s in out.steps] == ["failed", "skipped"]
    out = run(
        [{"name": "x", "continue_on_error": True, **fail}, {"name": "y", "type": "log", "config": {"message": "m"}}],
        st,
    )
    assert out.status is ExecutionStatus.SUCCEEDED
    assert [s["status"] for s in out.steps] == ["failed", "succeeded"]


def test_step_timeout_and_workflow_timeout(st: Settings) -> None:
    out = run([{"name": "s", "type": "sleep", "config": {"seconds": 5}, "timeout": 0.2}], st)
    assert out.status is ExecutionStatus.FAILED
    assert out.steps[0]["status"] == "timed_out"
    assert "timed out after 0.2s" in (out.error or "")
    out = run(
        [
            {"name": "s1", "type": "sleep", "config": {"seconds": 0.1}},
            {"name": "s2", "type": "sleep", "config": {"seconds": 5}},
        ],
        st,
        timeout=0.4,
    )
    assert out.status is ExecutionStatus.TIMED_OUT
    assert [s["status"] for s in out.steps] == ["succeeded", "timed_out"]


def test_a_step_timeout_interrupts_a_c_call_that_holds_the_gil(st: Settings) -> None:
    # the backup renewer keeps the lease of such a step (docs/reliability.md): its timeout bounds it
    for name, args in (("hold_gil", [30]), ("catastrophic_regex", [60])):
        step = {"name": "c", "type": "python", "config": {"callable": f"tests.worker.callables:{name}", "args": args}}
        out = run([{**step, "timeout": 0.3}], st)
        assert out.steps[0]["status"] == "timed_out", (name, out.steps[0])
        assert out.steps[0]["duration_ms"] < 5000, (name, out.steps[0])


def test_output_is_capped_at_16_kb() -> None:
    capped = cap_output({"data": "x" * (OUTPUT_CAP * 2)})
    assert capped["truncated"] is True and capped["size"] > OUTPUT_CAP
    assert len(str(capped)) < OUTPUT_CAP + 100
    assert cap_output({"a": 1}) == {"a": 1}


def test_http_step_output_status_and_redaction(st: Settings) -> None:
    with scripted_server([200], body={"ok": True, "token": "abc"}) as srv:
        out = run(
            [
                {
                    "name": "call",
                    "type": "http",
                    "config": {
                        "method": "post",
                        "url": srv.url + "/hook",
                        "headers": {"Authorization": "Bearer s3cr3t!"},
                        "body": {"x": 1},
                    },
                }
            ],
            st,
        )
        assert srv.requests[0]["method"] == "POST"
        assert srv.requests[0]["body"] == '{"x":1}'
    assert out.status is ExecutionStatus.SUCCEEDED
    assert out.steps[0]["output"] == {"status": 200, "body": {"ok": True, "token": "***"}, "truncated": False}


def test_http_step_fails_on_unaccepted_status(st: Settings) -> None:
    with scripted_server([500]) as srv:
        out = run([{"name": "call", "type": "http", "config": {"url": srv.url}}], st)
        ok = run([{"name": "call", "type": "http", "config": {"url": srv.url, "accepted_status": [500]}}], st)
    assert out.status is ExecutionStatus.FAILED
    assert "HTTP 500 is not accepted" in (out.error or "")
    assert out.steps[0]["output"]["status"] == 500
    assert ok.status is ExecutionStatus.SUCCEEDED


def test_http_config_validation(st: Settings) -> None:
    assert "steps[0].config.url" in invalid([{"name": "h", "type": "http", "config": {"url": "ftp://x"}}], st)
    assert "is required" in invalid([{"name": "h", "type": "http", "config": {}}], st)
    msg = invalid([{"name": "h", "type": "http", "config": {"url": "http://x", "accepted_status": [999]}}], st)
    assert "out of range" in msg
    assert "unknown key" in invalid([{"name": "h", "type": "http", "config": {"url": "http://x", "bogus": 1}}], st)


def test_python_callables_only_from_the_allow_list(st: Settings) -> None:
    msg = invalid([{"name": "p", "type": "python", "config": {"callable": "os:system", "args": ["id"]}}], st)
    assert "'os:system' is not an allowed callable" in msg
    steps = validate_steps(
        [
            {
                "name": "p",
                "type": "python",
                "config": {"callable": "tests.worker.callables:with_context", "args": ["hi"], "pass_context": True},
            }
        ],
        st,
    )
    out = run(steps, st, attempt=2)
    assert out.steps[0]["output"] == "hi wf attempt 2"
    # an allow-list shrunk after saving is enforced at run time too
    out = run(steps, load_settings(database_url="sqlite:///:memory:"))
    assert out.status is ExecutionStatus.FAILED and "not an allowed callable" in (out.error or "")


def test_shell_disabled_by_default_and_runs_argv_when_enabled(st: Settings) -> None:
    step = {"name": "sh", "type": "shell", "config": {"argv": [sys.executable, "-c", "print('hi; $HOME')"]}}
    assert "disabled" in invalid([step], st)
    out = run([step], st)
    assert out.status is ExecutionStatus.FAILED and "disabled" in (out.error or "")
    on = st.model_copy(update={"enable_shell": True})
    validate_steps([step], on)
    out = run([step], on)
    assert out.status is ExecutionStatus.SUCCEEDED
    assert out.steps[0]["output"] == {"exit_code": 0, "stdout": "hi; $HOME\n", "stderr": ""}
    bad = {"name": "sh", "type": "shell", "config": {"argv": [sys.executable, "-c", "import sys; sys.exit(3)"]}}
    out = run([bad], on)
    assert out.status is ExecutionStatus.FAILED and "exit code 3" in (out.error or "")
    slow = {"name": "sh", "type": "shell", "config": {"argv": ["sleep", "5"], "timeout": 0.3}}
    out = run([slow], on)
    assert out.status is ExecutionStatus.FAILED and "killed after 0.3s" in (out.error or "")
    assert "argv" in invalid([{"name": "sh", "type": "shell", "config": {"argv": []}}], on)


def test_celery_task_and_basic_config_validation(st: Settings) -> None:
    assert "config.task" in invalid([{"name": "c", "type": "celery_task", "config": {"wait": True}}], st)
    allowed = st.model_copy(update={"celery_task_names": ["t"], "celery_task_queues": ["q"]})
    assert "wait_timeout" in invalid(
        [{"name": "c", "type": "celery_task", "config": {"task": "t", "wait_timeout": 0}}], allowed
    )
    assert "config.level" in invalid([{"name": "l", "type": "log", "config": {"message": "m", "level": "loud"}}], st)
    assert "config.seconds" in invalid([{"name": "s", "type": "sleep", "config": {"seconds": -1}}], st)
    assert "unknown strategy 'nope'" in invalid([{"name": "n", "type": "nope"}], st)


def test_secrets_in_errors_are_scrubbed(st: Settings) -> None:
    out = run(
        [
            {
                "name": "h",
                "type": "http",
                "config": {"url": "http://127.0.0.1:9/x", "headers": {"X-Api-Key": "hunter2-key"}, "timeout": 0.5},
            }
        ],
        st,
    )
    assert out.status is ExecutionStatus.FAILED
    assert "hunter2-key" not in str(out.steps)
