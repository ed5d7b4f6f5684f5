"""``shell``: run a program (argv list, never through a shell); off unless ``WOOW_ENABLE_SHELL=true``."""

from __future__ import annotations

import os
import subprocess
from typing import Any

from pydantic import Field, field_validator

from ...errors import InvalidWorkflow, StepFailed
from ..base import StepContext, StrategyConfig, TaskStrategy

STREAM_CAP = 6 * 1024  # characters of stdout/stderr kept each


class ShellConfig(StrategyConfig):
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = True
    timeout: float = Field(default=300.0, gt=0, le=86_400)
    accepted_exit_codes: list[int] = Field(default_factory=lambda: [0])

    @field_validator("argv")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if not value[0].strip():
            raise ValueError("argv[0] (the program) must not be empty")
        if any("\x00" in a for a in value):
            raise ValueError("arguments must not contain NUL characters")
        return value


def _tail(data: bytes | str | None) -> str:
    if data is None:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text if len(text) <= STREAM_CAP else "…" + text[-STREAM_CAP:]


class ShellStrategy(TaskStrategy):
    name = "shell"
    Config = ShellConfig
    description = "Run a command (argv list, no shell). Disabled unless WOOW_ENABLE_SHELL=true."

    def check_allowed(self) -> None:
        if not self.settings.enable_shell:
            raise InvalidWorkflow("shell steps are disabled (set WOOW_ENABLE_SHELL=true on workers to allow them)")

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: ShellConfig = config
        self.check_allowed()
        env = {**os.environ, **cfg.env} if cfg.inherit_env else dict(cfg.env)
        env.setdefault("WOOW_EXECUTION_ID", str(ctx.execution_id))
        try:
            proc = subprocess.run(
                cfg.argv,
                cwd=cfg.cwd,
                env=env,
                capture_output=True,
                timeout=cfg.timeout,
                stdin=subprocess.DEVNULL,
                check=False,
                shell=False,
            )
        except subprocess.TimeoutExpired as exc:
            output: dict[str, Any] = {"exit_code": None, "stdout": _tail(exc.stdout), "stderr": _tail(exc.stderr)}
            raise StepFailed(f"{cfg.argv[0]}: killed after {cfg.timeout:g}s", output=output) from None
        except OSError as exc:
            raise StepFailed(f"{cfg.argv[0]}: cannot run ({exc.strerror or exc})") from None
        output = {"exit_code": proc.returncode, "stdout": _tail(proc.stdout), "stderr": _tail(proc.stderr)}
        if proc.returncode not in cfg.accepted_exit_codes:
            raise StepFailed(f"{cfg.argv[0]}: exit code {proc.returncode}", output=output)
        return output
