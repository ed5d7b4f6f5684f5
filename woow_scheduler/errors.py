"""The package's exception tree.

Every error a user can cause derives from :class:`WoowError`.  The CLI maps each family to an
exit code (input errors → 2, runtime failures → 1) and prints the message as one line.
"""

from __future__ import annotations

_CONTROL = {ord(c): repr(c)[1:-1] for c in "\n\r\t\v\f\x00"}


def one_line(text: str) -> str:
    """Escape line breaks and control characters: user values echoed in a message can't split it."""
    return text.translate(_CONTROL)


class WoowError(Exception):
    """Root of every error raised on purpose by woow-scheduler.

    The message is always one line: control characters in it (often from echoed user input) are
    escaped when the error is built.
    """

    exit_code = 1

    def __init__(self, *args: object) -> None:
        if args and isinstance(args[0], str):
            args = (one_line(args[0]), *args[1:])
        super().__init__(*args)


class ConfigError(WoowError):
    """A setting is missing or invalid (raised at start-up)."""

    exit_code = 2


class InvalidInput(WoowError, ValueError):
    """User input was rejected; the message names the field and the reason."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidCronExpression(InvalidInput):
    """A cron expression could not be parsed."""


class InvalidTriggerSpec(InvalidInput):
    """A trigger specification is invalid (interval, one-time, window, misfire policy ...)."""


class InvalidCalendar(InvalidInput):
    """A calendar definition (holiday, annual, weekly, monthly, daily, cron) is invalid."""


class InvalidWorkflow(InvalidInput):
    """A workflow definition (steps, policies) is invalid."""


class NotFound(WoowError, LookupError):
    """A workflow, trigger or execution does not exist."""

    exit_code = 2


class Ambiguous(InvalidInput):
    """A name matches more than one object."""


class Conflict(InvalidInput):
    """The change conflicts with existing data (e.g. a duplicate workflow name)."""


class Forbidden(WoowError, PermissionError):
    """The caller (or a stored workflow's owner) lacks the scope or privilege an action needs."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class LockError(WoowError):
    """A per-workflow lock could not be taken, renewed or released."""


class StoreUnavailable(WoowError):
    """PostgreSQL (or the configured database) or Redis could not be reached."""

    exit_code = 1


class PayloadRejected(InvalidInput):
    """A task payload (execute_workflow kwargs) is missing, forged or of an unknown version."""


class StepFailed(WoowError):
    """A workflow step failed on purpose (e.g. HTTP 500, exit code 1); ``output`` is kept with the error."""

    def __init__(self, message: str, *, output: object = None) -> None:
        super().__init__(message)
        self.output = output


class StepTimeout(WoowError):
    """A step, or the whole workflow, ran past its time limit."""

    def __init__(self, message: str, *, workflow: bool = False) -> None:
        super().__init__(message)
        self.workflow = workflow
