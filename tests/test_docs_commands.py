"""Every command line of a shell block (```sh / bash / console / shell) in README.md and docs/*.md is
executed by a test exactly as written, or says in REGISTRY below which test or CI step runs it, or
why none does.  A doc command that is in neither fails this module, and so does a registry entry
whose command left the docs, whose test does not exist, or whose CI step .ci/run does not hold
verbatim.

Docs whose own test modules execute their commands (triggers, security, console, the README's
walkthrough) are read through those modules' own extractors.  The cheap commands (under a minute
on the 2-core CI machine) run here from the repository root, in the test environment, and their
output is checked against what the docs say they print.  `make chaos` and the two pytest commands
of docs/reliability.md run as written with pytest's own ``PYTEST_ADDOPTS="--collect-only -q"``:
the real make target and the real selection, asserted to be the scenarios the doc describes.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_readme import ci_commands, readme_block

ROOT = Path(__file__).resolve().parents[1]
_SHELL_BLOCK = re.compile(r"^```(sh|bash|console|shell)\n(.*?)^```", re.S | re.M)

HERE = "tests/test_docs_commands.py::"
CHEAP = HERE + "test_cheap_command_runs_as_written"
COLLECT = HERE + "test_chaos_command_selects_the_scenarios_the_doc_describes"
CI = "run by .ci/run"
NOT_RUN = "not executed: "

#: exact command string (comment stripped, as doc_commands() gives it) -> the test that executes it,
#: CI, or why nothing does.  One entry per command that no doc's own test module executes.
REGISTRY: dict[str, str] = {
    # README.md
    "make demo": NOT_RUN + "runs until Ctrl-C and installs the embedded extra into .venv; "
    "tests/test_readme.py::test_quick_start_names_make_demo_and_make_test checks that it runs `woow dev`, and "
    "tests/test_readme.py::test_woow_dev_fires_the_demo_and_leaves_no_process runs `woow dev` and stops it with Ctrl-C",
    "make test": CI,
    "python -m venv .venv && .venv/bin/pip install -e .": NOT_RUN + "installation: the suite already runs in an "
    "installed venv, whose `woow` test_walkthrough_against_postgresql_and_redis runs",
    "export WOOW_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/woow": NOT_RUN + "settings: "
    "tests/test_readme.py::test_walkthrough_against_postgresql_and_redis runs the walkthrough's `woow` lines "
    "with the same variables pointing at a database of its own",
    "export WOOW_REDIS_URL=redis://127.0.0.1:6379/0": NOT_RUN + "settings: "
    "tests/test_readme.py::test_walkthrough_against_postgresql_and_redis sets it to a Redis prefix of its own",
    ". .venv/bin/activate": NOT_RUN + "puts the venv's `woow` on PATH, as the walkthrough test's environment does",
    'woow cron next "0 15 10 ? * 6L" --tz America/New_York -n 3': CHEAP,
    "make chaos": COLLECT,
    "make bench BENCH_ARGS=--quick": CI,
    # docs/performance.md
    "make bench": NOT_RUN + "every benchmark at full size in one run (about 15 minutes); .ci/run runs each "
    "of its parts as docs/performance.md lists them (`python -m bench.lateness_bench`, ...) and "
    "`make bench BENCH_ARGS=--quick`",
    "python -m bench --quick": CI,
    "python -m bench.exec_bench --rounds 5": CI,
    "PYTHONPATH=. python bench/exec_profile.py": CHEAP,
    "python -m bench.burst_bench --quick": CHEAP,
    "python -m bench.burst_bench --cold": CI,
    "python -m bench.lateness_bench": CI,
    "python -m bench.idle_bench": CI,
    "python -m bench.sync_bench": CI,
    # docs/reliability.md ("make chaos" and "make test" above)
    "PYTHONPATH=. pytest -m chaos tests/chaos": COLLECT,
    'PYTHONPATH=. pytest -m "slow and not chaos" tests/chaos': COLLECT,
}


def doc_commands() -> list[tuple[str, str]]:
    """(doc, command) for every command line of a shell block of README.md and docs/*.md: `\\`
    continuations joined, a trailing `  # comment` and comment lines left out (as readme_block
    reads them); in a ```console block only the `$ ` lines."""
    found: list[tuple[str, str]] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for kind, body in _SHELL_BLOCK.findall(path.read_text()):
            for line in body.replace("\\\n", " ").splitlines():
                if kind == "console":
                    if not line.startswith("$ "):
                        continue
                    line = line[2:]
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command and not command.startswith("#"):
                    found.append((path.relative_to(ROOT).as_posix(), command))
    return found


def _argv(command: str) -> tuple[str, ...]:
    return tuple(shlex.split(command))


def executed_by_doc_tests() -> dict[str, set[tuple[str, ...]]]:
    """doc -> the commands (as argv) its own test module executes, read through that module."""
    from tests.console.conftest import doc_commands as console_commands
    from tests.security.test_docs_commands import doc_commands as security_commands
    from tests.test_triggers_doc import _blocks as triggers_blocks

    walkthrough = readme_block("## Using it against PostgreSQL and Redis")
    return {
        # test_walkthrough_against_postgresql_and_redis runs its `woow` lines (background ones kept up)
        "README.md": {_argv(line) for line in walkthrough if line.startswith("woow ")},
        # test_every_command_runs_as_written
        "docs/triggers.md": {_argv(line) for commands, _ in triggers_blocks() for line in commands},
        # test_security_doc_commands_run_and_give_the_scopes_they_say
        "docs/security.md": {tuple(argv) for argv in security_commands()},
        # the browser tests' stack starts its API and tokens with these lines (tests/console/conftest.py)
        "docs/console.md": {_argv(line) for line in console_commands()},
    }


def test_every_doc_command_is_executed_or_registered() -> None:
    commands = doc_commands()
    assert len(commands) > 40, commands  # the extraction sees the docs' blocks
    elsewhere = executed_by_doc_tests()
    unaccounted = [
        f"{doc}: {command}"
        for doc, command in commands
        if command not in REGISTRY and _argv(command) not in elsewhere.get(doc, set())
    ]
    assert unaccounted == [], (
        "doc commands no test executes: run each in a test exactly as written, "
        f"or register it in {HERE}REGISTRY:\n" + "\n".join(unaccounted)
    )
    stale = sorted(set(REGISTRY) - {command for _, command in commands})
    assert stale == [], f"REGISTRY names commands no doc has any more: {stale}"


def test_registry_entries_are_what_they_say() -> None:
    ci = ci_commands()
    for command, how in REGISTRY.items():
        if how == CI:
            assert command in ci, f".ci/run does not run {command!r} as written"
        elif how.startswith(NOT_RUN):
            assert len(how) > len(NOT_RUN) + 20, f"{command!r}: say why nothing executes it"
        else:
            module, name = how.split("::")
            test = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), name, None)
            assert callable(test), f"{command!r}: {how} does not exist"
    # each command this module executes has the check of what the docs say it prints
    assert {c for c, how in REGISTRY.items() if how == CHEAP} == set(OUTPUT_CHECKS)
    assert {c for c, how in REGISTRY.items() if how == COLLECT} == set(SELECTION_CHECKS)


def _env() -> dict[str, str]:
    """A user's shell in this checkout: the venv's commands first on PATH, the test servers'
    WOOW_TEST_* settings (as `make test` / `make bench` give them) and no other WOOW_* variable,
    and nothing an enclosing make passes down (`make test PYTEST_ARGS=...` would reach `make chaos`)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("WOOW_") and not k.startswith("WOOW_TEST_"))
        and k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PYTEST_ADDOPTS", "PYTHONPATH"}
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(command: str, timeout: float, **extra: str) -> str:
    result = subprocess.run(
        command, shell=True, cwd=ROOT, env={**_env(), **extra}, capture_output=True, text=True, timeout=timeout
    )
    tail = f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{command}\nexit {result.returncode}\n{tail}"
    return result.stdout


def _cron_next(out: str) -> None:
    # README: "Try any expression without a database": three fire times, the last Friday at 10:15 New York time
    assert "on the last Friday of the month" in out, out
    local = re.findall(r"│ \d+ │ (\S+) ", out)
    assert len(local) == 3, out
    for stamp in local:
        when = dt.datetime.fromisoformat(stamp)
        assert (when.hour, when.minute, when.weekday()) == (10, 15, 4), stamp
        assert (when + dt.timedelta(days=7)).month != when.month, stamp  # the month's last Friday
        assert when.utcoffset() in (dt.timedelta(hours=-5), dt.timedelta(hours=-4)), stamp


def _exec_profile(out: str) -> None:
    # docs/performance.md: "one process, no Celery: wall and CPU of execute_workflow per execution"
    fields = dict(re.findall(r"\b(code|n|wall_us_mean|cpu_us_mean)=(\S+)", out))
    assert fields.get("code") == str(ROOT / "woow_scheduler"), out  # PYTHONPATH=. runs this checkout
    assert fields.get("n") == "3000", out
    assert int(fields["wall_us_mean"]) > 0 and int(fields["cpu_us_mean"]) > 0, out


def _table(out: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in out.splitlines() if line.strip())


def _burst_quick(out: str) -> None:
    # docs/performance.md: "10,000 fires due in one second (full: 100,000), 5 s beat lock"
    figures = _table(out)
    assert figures["burst_n"] == "10000" and figures["burst_lock_timeout_s"] == "5.0", out
    assert float(figures["burst_per_s"]) > 0 and float(figures["redbeat_burst_per_s"]) > 0, out


#: the cheap commands this module executes (REGISTRY value CHEAP) -> what their output must show
OUTPUT_CHECKS: dict[str, Callable[[str], None]] = {
    'woow cron next "0 15 10 ? * 6L" --tz America/New_York -n 3': _cron_next,
    "PYTHONPATH=. python bench/exec_profile.py": _exec_profile,
    "python -m bench.burst_bench --quick": _burst_quick,
}


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c, how in REGISTRY.items() if how == CHEAP])
def test_cheap_command_runs_as_written(command: str) -> None:
    OUTPUT_CHECKS[command](_run(command, timeout=180))


def _collected(out: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if "::" in line]


def _scenario_rows() -> list[str]:
    """The first column of docs/reliability.md's scenario table: 1 ... 13 and 1b."""
    text = (ROOT / "docs" / "reliability.md").read_text()
    table = text.split("## The scenarios", 1)[1].split("\n\n", 2)[1]
    return [row.split("|")[1].strip() for row in table.splitlines()[2:]]


def _named_in_doc(param: str) -> set[str]:
    text = (ROOT / "docs" / "reliability.md").read_text()
    return set(re.findall(rf"tests/chaos/[\w/]+\.py::\w+\[{param}\]", text))


def _full_scenarios(ids: list[str]) -> set[str]:
    full = {i for i in ids if i.startswith("tests/chaos/") and i.endswith("[full]")}
    # one full-size test per scenario of the doc's table (13 and 1b), and every one the doc names
    assert len(full) == len(_scenario_rows()) == 14, (sorted(full), _scenario_rows())
    assert _named_in_doc("full") <= full, _named_in_doc("full") - full
    return full


def _make_chaos(ids: list[str]) -> None:
    # "full size (pytest -m chaos)": the 14 scenarios at full size, plus other chaos-marked tests
    full = _full_scenarios(ids)
    assert not any(i.endswith("[reduced]") for i in ids), ids
    assert set(ids) > full


def _chaos_harness(ids: list[str]) -> None:
    # "full size, only this harness"
    assert set(ids) == _full_scenarios(ids), ids


def _chaos_reduced(ids: list[str]) -> None:
    # "reduced size": every scenario but 1b, which the table says runs at "full size only"
    assert all(i.startswith("tests/chaos/") and not i.endswith("[full]") for i in ids), ids
    reduced = {i.removesuffix("[reduced]") for i in ids if i.endswith("[reduced]")}
    rabbitmq = "tests/chaos/test_rabbitmq.py::test_worker_kill9_mid_run_on_rabbitmq"
    text = (ROOT / "docs" / "reliability.md").read_text()
    assert re.search(r"^\| 1b \|.*\(full size only", text, re.M)
    assert len(reduced) == len(_scenario_rows()) - 1 and rabbitmq not in reduced, sorted(reduced)
    assert {i.removesuffix("[reduced]") for i in _named_in_doc("reduced")} <= reduced


#: the chaos commands this module executes with PYTEST_ADDOPTS="--collect-only -q" -> what they must select
SELECTION_CHECKS: dict[str, Callable[[list[str]], None]] = {
    "make chaos": _make_chaos,
    "PYTHONPATH=. pytest -m chaos tests/chaos": _chaos_harness,
    'PYTHONPATH=. pytest -m "slow and not chaos" tests/chaos': _chaos_reduced,
}


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c, how in REGISTRY.items() if how == COLLECT])
def test_chaos_command_selects_the_scenarios_the_doc_describes(command: str) -> None:
    no_venv = not (ROOT / ".venv" / "bin" / "python").exists()
    if command.startswith("make ") and no_venv and os.environ.get("CI") != "true":
        pytest.skip("make chaos would first create .venv in this checkout (make test does)")
    ids = _collected(_run(command, timeout=300, PYTEST_ADDOPTS="--collect-only -q"))
    assert ids, "selected nothing"
    SELECTION_CHECKS[command](ids)
