"""``shell``: run a program (argv list, never through a shell); off unless ``WOOW_ENABLE_SHELL=true``.

Only owners with the ``shell`` privilege may use it, only programs in ``WOOW_SHELL_PROGRAMS`` (when
set) may run, and the program starts with an empty environment unless ``inherit_env`` is true; even
then woow's own settings (``WOOW_*``, ``CELERY_*``), secret-looking variables and URLs with
passwords are left out.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from ...errors import InvalidWorkflow, StepFailed
from ...settings import Settings
from ..base import StepContext, StrategyConfig, TaskStrategy
from ..redact import is_secret_key

STREAM_CAP = 6 * 1024  # characters of stdout/stderr kept each


class ShellConfig(StrategyConfig):
    argv: list[str] = Field(min_length=1)
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    inherit_env: bool = Field(
        default=False, description="start from the worker's environment (without woow's settings and secrets)"
    )
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

    @field_validator("argv", mode="after")
    @classmethod
    def _program(cls, value: list[str], info: ValidationInfo) -> list[str]:
        settings = (info.context or {}).get("settings")
        if isinstance(settings, Settings) and settings.shell_programs and value[0] not in settings.shell_programs:
            raise ValueError(
                f"program '{value[0]}' is not allowed (allowed: {', '.join(settings.shell_programs)})"
            )
        return value


_HIDDEN_PREFIXES = ("WOOW_", "CELERY_", "FLOWER_")
_URL_PASSWORD = re.compile(r"://[^/@\s:]*:[^/@\s]*@")


def worker_environment(redact_keys: list[str]) -> dict[str, str]:
    """The worker's environment without woow's settings and anything secret-looking."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(_HIDDEN_PREFIXES)
        and not is_secret_key(k, redact_keys)
        and not _URL_PASSWORD.search(v)
    }


def _tail(data: bytes | str | None) -> str:
    if data is None:
        return ""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    return text if len(text) <= STREAM_CAP else "…" + text[-STREAM_CAP:]


class ShellStrategy(TaskStrategy):
    name = "shell"
    Config = ShellConfig
    description = "Run a command (argv list, no shell). Disabled unless WOOW_ENABLE_SHELL=true."
    privilege = "shell"

    def check_allowed(self) -> None:
        if not self.settings.enable_shell:
            raise InvalidWorkflow("shell steps are disabled (set WOOW_ENABLE_SHELL=true on workers to allow them)")

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: ShellConfig = config
        self.check_allowed()
        base = worker_environment(self.settings.redact_keys) if cfg.inherit_env else {"PATH": os.defpath}
        env = {**base, **cfg.env}
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
