"""The API's checks on what a user may store: privileges of steps, quotas, minimum interval, secrets.

Each check runs before anything is written and raises a typed error (problem+json 403 or 422 with
the field).  Admin tokens are exempt from the quotas and the minimum interval, never from
validation.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ..db.models import Trigger, Workflow
from ..engine.redact import MASK, is_secret_key, mask_url_passwords, redact
from ..engine.registry import validate_steps
from ..errors import InvalidInput, InvalidTriggerSpec
from ..permissions import missing_privileges, user_privileges
from ..tokens import Principal
from ..triggers import parse_trigger_spec
from ..views import WorkflowView
from .state import ApiState

#: fire times looked at to find a trigger's shortest gap
_GAP_SAMPLE = 50


def check_step_privileges(state: ApiState, user: Principal, owner: str | None, steps: Sequence[Any]) -> None:
    """Validate ``steps`` (422) and refuse (403) a step its owner may not use."""
    normalised = validate_steps(list(steps), state.settings)
    # an admin giving the workflow to someone: the owner's grants count, as at run time
    mine = owner is None or owner == user.user_id
    held = user.privileges if mine else user_privileges(state.db, owner or "")
    missing_privileges(normalised, held, state.settings)


def check_workflow_quota(state: ApiState, user: Principal, owner: str) -> None:
    if user.is_admin:
        return
    limit = state.settings.max_workflows_per_user
    with state.db.session() as s:
        count = s.scalar(select(func.count()).select_from(Workflow).where(Workflow.owner_user_id == owner)) or 0
    if count >= limit:
        raise InvalidInput(
            f"name: user '{owner}' already owns {count} workflows, the limit is {limit} "
            "(WOOW_MAX_WORKFLOWS_PER_USER)",
            field="name",
        )


def check_trigger_quota(state: ApiState, user: Principal, workflow: WorkflowView) -> None:
    if user.is_admin or workflow.owner_user_id is None:
        return
    limit = state.settings.max_triggers_per_user
    with state.db.session() as s:
        count = (
            s.scalar(
                select(func.count())
                .select_from(Trigger)
                .join(Workflow, Workflow.id == Trigger.workflow_id)
                .where(Workflow.owner_user_id == workflow.owner_user_id)
            )
            or 0
        )
    if count >= limit:
        raise InvalidInput(
            f"body: user '{workflow.owner_user_id}' already has {count} triggers, the limit is {limit} "
            "(WOOW_MAX_TRIGGERS_PER_USER)",
            field="body",
        )


def check_min_interval(state: ApiState, user: Principal, spec: Mapping[str, Any]) -> None:
    """The spec parses, its fire times can be computed, and (non-admin) they are far enough apart."""
    now = datetime.now(UTC)
    parsed = parse_trigger_spec(spec, now=now)
    try:
        fires = list(itertools.islice(parsed.iter_fire_times(now), _GAP_SAMPLE))
    except (OverflowError, ValueError, OSError) as exc:
        raise InvalidTriggerSpec(f"body: its fire times cannot be computed ({exc})", field="body") from None
    if user.is_admin:
        return
    minimum = timedelta(seconds=state.settings.min_interval)
    gaps = [b - a for a, b in itertools.pairwise(fires)]
    if gaps and min(gaps) < minimum:
        raise InvalidTriggerSpec(
            f"body: fires {min(gaps).total_seconds():g}s apart; the shortest interval is "
            f"{minimum.total_seconds():g}s (WOOW_MIN_INTERVAL)",
            field="every" if parsed.type == "interval" else "cron",
        )


# -- secrets are write-only ---------------------------------------------------------------------


def public_workflow(state: ApiState, view: WorkflowView) -> WorkflowView:
    """The view with secret-looking step config values shown as ``***``."""
    keys = state.settings.redact_keys
    steps = [{**step, "config": redact(step.get("config") or {}, keys)} for step in view.steps]
    return view.model_copy(update={"steps": steps})


def _restore(new: Any, old: Any, keys: Sequence[str]) -> Any:
    if isinstance(new, dict) and isinstance(old, Mapping):
        out = {}
        for k, v in new.items():
            if v == MASK and is_secret_key(k, keys) and k in old:
                out[k] = copy.deepcopy(old[k])
            else:
                out[k] = _restore(v, old.get(k), keys)
        return out
    if isinstance(new, list) and isinstance(old, list):
        return [_restore(v, old[i] if i < len(old) else None, keys) for i, v in enumerate(new)]
    if isinstance(new, str) and isinstance(old, str) and new != old and new == mask_url_passwords(old):
        return old  # a URL shown with its password masked, sent back unchanged
    return new


def restore_secrets(
    state: ApiState, new_steps: Sequence[Any], stored_steps: Sequence[Mapping[str, Any]]
) -> list[Any]:
    """``new_steps`` with every ``***`` under a secret key replaced by the stored value (same step name)."""
    keys = state.settings.redact_keys
    by_name = {s.get("name"): s for s in stored_steps if isinstance(s, Mapping)}
    out: list[Any] = []
    for step in new_steps:
        if isinstance(step, dict) and isinstance(step.get("config"), dict) and step.get("name") in by_name:
            old = by_name[step.get("name")].get("config") or {}
            step = {**step, "config": _restore(step["config"], old, keys)}
        out.append(step)
    return out

