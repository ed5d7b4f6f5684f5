"""``log`` and ``sleep``: the simplest strategies (and the demo's)."""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pydantic import Field

from ...errors import one_line
from ..base import StepContext, StrategyConfig, TaskStrategy

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogConfig(StrategyConfig):
    message: str = Field(min_length=1, max_length=10_000)
    level: Literal["debug", "info", "warning", "error"] = "info"


class LogStrategy(TaskStrategy):
    name = "log"
    Config = LogConfig
    description = "Write a message to the worker log."

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: LogConfig = config
        ctx.logger.log(
            _LEVELS[cfg.level],
            "%s",
            one_line(cfg.message),  # a newline in the message must not forge a line of the text log
            extra={"workflow": ctx.workflow_name, "execution_id": str(ctx.execution_id), "step": ctx.step_name},
        )
        return {"message": cfg.message, "level": cfg.level}


class SleepConfig(StrategyConfig):
    seconds: float = Field(ge=0, le=86_400)


class SleepStrategy(TaskStrategy):
    name = "sleep"
    Config = SleepConfig
    description = "Wait a number of seconds."

    def run(self, config: Any, ctx: StepContext) -> Any:
        cfg: SleepConfig = config
        time.sleep(cfg.seconds)
        return {"slept": cfg.seconds}
