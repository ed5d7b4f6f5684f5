"""The extension seam: what a task strategy is, and what a step is given when it runs.

A strategy is a class with a ``name``, a pydantic ``Config`` model (validated when the workflow
is saved, so bad config is rejected at ``workflow create``, not at 3 a.m.) and a ``run`` method.
Third-party strategies register through the ``woow_scheduler.strategies`` entry-point group.
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from ..settings import Settings


class StrategyConfig(BaseModel):
    """Base of every strategy's config model: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class StepContext:
    """What a running step knows about its run."""

    workflow_id: uuid.UUID
    workflow_name: str
    execution_id: uuid.UUID
    scheduled_for: datetime | None
    user_id: str | None
    attempt: int
    step_name: str
    settings: Settings
    # fence number of the workflow lock this run holds (strictly increasing per workflow): pass it to
    # systems the step writes to, so they can refuse writes from a run that lost its lock
    fence: int | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)  # outputs of earlier steps, by step name
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("woow.step"))
    #: privileges of the workflow's owner (``permissions.PRIVILEGES``); strategies that decide at
    #: run time (http: the resolved address) check them
    privileges: frozenset[str] = frozenset()


class TaskStrategy(ABC):
    """One kind of step.  Subclass, set ``name`` and ``Config``, implement ``run``."""

    name: ClassVar[str]
    Config: ClassVar[type[StrategyConfig]]
    description: ClassVar[str] = ""
    #: the privilege (``permissions.PRIVILEGES``) every step of this strategy needs; ``None``: any
    #: user may use it (then ``required_privileges`` may still ask one for some configs)
    privilege: ClassVar[str | None] = None
    #: the runner loads the owner's privileges before a step of this strategy runs
    uses_privileges: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def required_privileges(self, config: Any) -> frozenset[str]:
        """Privileges a step with this (validated) config needs: checked at save and at run time."""
        return frozenset({self.privilege}) if self.privilege else frozenset()

    def privilege_reason(self, config: Any, privilege: str) -> str:
        """Why ``config`` needs ``privilege``, for the refusal message."""
        return f"{self.name} steps run code or reach systems on the workers"

    def check_allowed(self) -> None:
        """Raise ``InvalidWorkflow`` when settings forbid this strategy (e.g. shell disabled)."""
        return None

    @abstractmethod
    def run(self, config: Any, ctx: StepContext) -> Any:
        """Run one step with its validated config; return a JSON-serialisable output."""
