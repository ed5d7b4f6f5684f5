"""The console's pages: overview, upcoming, workflows, history, executions, login and the actions."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from ...engine.redact import redact
from ...enums import ExecutionStatus
from ...errors import InvalidInput, NotFound
from ...labels import parse_label_args
from ...tokens import verify_token
from ..auth import FAILURE_WINDOW, count_failed_lookup, failed_lookups
from ..guard import public_workflow
from ..live import live_triggers
from . import data
from .session import COOKIE, LOGIN_COOKIE
from .web import Form, Refused, Session, State, base, checked_post, parse_uuid, redirect, render, safe_next

router = APIRouter()

TIMELINE_WIDTH = 1000.0
#: executions per history page
PAGE = 200
STATUSES = tuple(s.value for s in ExecutionStatus)


def _owner(session: Any) -> str | None:
    """Whose objects a principal sees: their own, or everyone's for an admin."""
    principal = session.principal
    return None if principal.is_admin else principal.user_id


# -- login / logout ------------------------------------------------------------------------------
@router.get("/login", name="login")
def login_page(request: Request, next: str | None = None) -> Response:
    if request.app.state.sessions.load(request.cookies.get(COOKIE)) is not None:
        return RedirectResponse(safe_next(request, next), status_code=303)
    return _login_form(request, next)


def _login_form(request: Request, next: str | None, *, error: str | None = None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", status, title="Log in", nonce=nonce, next=next or "", error=error)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        path=base(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/login")
def login(request: Request, form: Form, state: State) -> Response:
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    sent = form.get("csrf", "")
    if not nonce or not secrets.compare_digest(nonce.encode(), sent.encode()):
        raise Refused(403, "csrf: the login form's CSRF token is missing or wrong; reload the page and try again")
    token = form.get("token", "").strip()
    next_ = form.get("next") or None
    if not token:
        return _login_form(request, next_, error="token: is required (a woow_... API token)", status=422)
    client = request.client.host if request.client is not None else "unknown"
    if failed_lookups(state, client) >= state.settings.auth_failure_limit:  # the API's counter and limit
        response = _login_form(
            request, next_, error=f"token: too many failed logins from this address; retry in {FAILURE_WINDOW}s",
            status=429,
        )
        response.headers["Retry-After"] = str(FAILURE_WINDOW)
        return response
    principal = verify_token(state.db, token)
    if principal is None:
        count_failed_lookup(state, client)
        return _login_form(request, next_, error="token: unknown, revoked or expired", status=401)
    session_id, _ = request.app.state.sessions.create(principal)
    response = RedirectResponse(safe_next(request, next_), status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=state.settings.console_session_ttl,
        path=base(request) or "/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=base(request) or "/")
    return response


@router.post("/logout", name="logout")
def logout(request: Request, session: Session, form: Form) -> Response:
    checked_post(session, form, change=False)
    request.app.state.sessions.delete(request.cookies.get(COOKIE))
    response = redirect(request, "/login", msg="logged-out")
    response.delete_cookie(COOKIE, path=base(request) or "/")
    return response


# -- overview ------------------------------------------------------------------------------------
@router.get("/", name="overview")
def overview(request: Request, session: Session, state: State) -> Response:
    owner = _owner(session)
    report = data.overview(state, owner)
    if owner is not None:  # a user sees the counts of their own triggers only
        by_state: dict[str, int] = {}
        for tr in state.service.list_triggers(owner=owner):
            by_state[tr.state] = by_state.get(tr.state, 0) + 1
        report.setdefault("counts", {})["triggers_by_state"] = by_state
    return render(request, "overview.html", title="Overview", report=report)


# -- upcoming ------------------------------------------------------------------------------------
@router.get("/upcoming", name="upcoming")
def upcoming(request: Request, session: Session, state: State, hours: str = "6") -> Response:
    if hours not in {str(h) for h in data.WINDOWS}:
        raise InvalidInput(f"hours: '{hours[:20]}' is not one of 1, 6, 24", field="hours")
    span = int(hours)
    now = datetime.now(UTC).replace(microsecond=0)
    triggers = live_triggers(state.redis, state.keys, state.service.list_triggers(owner=_owner(session)))
    groups = data.timeline(triggers, now, span, width=TIMELINE_WIDTH)
    return render(
        request,
        "upcoming.html",
        title="Upcoming",
        hours=span,
        windows=data.WINDOWS,
        groups=groups,
        ticks=data.ticks(now, span, TIMELINE_WIDTH),
        width=TIMELINE_WIDTH,
        now=now,
    )


# -- workflows -----------------------------------------------------------------------------------
@router.get("/workflows", name="workflows")
def workflows(
    request: Request, session: Session, state: State, name: str = "", owner: str = "", label: str = ""
) -> Response:
    name, owner, label = name.strip()[:200], owner.strip()[:200], label.strip()[:2000]
    if owner and not session.principal.is_admin:
        raise InvalidInput("owner: only an admin token may filter by owner", field="owner")
    # 'team=finance' or 'team=finance, tier=1': every pair must be among the workflow's labels
    wanted = parse_label_args([p for p in label.split(",") if p.strip()], "label") if label else None
    scope = owner or _owner(session)
    rows = state.service.list_workflows(owner=scope, labels=wanted)
    if name:
        rows = [w for w in rows if name.lower() in w.name.lower()]
    counts: dict[str, int] = {}
    for tr in state.service.list_triggers(owner=scope):
        counts[str(tr.workflow_id)] = counts.get(str(tr.workflow_id), 0) + 1
    return render(
        request, "workflows.html", title="Workflows", rows=rows, name=name, owner=owner, label=label, counts=counts
    )


@router.get("/workflows/{ref}", name="workflow")
def workflow(request: Request, ref: str, session: Session, state: State) -> Response:
    from ...service import spec_from_stored

    wf = state.workflow_for(session.principal, ref)
    triggers = live_triggers(state.redis, state.keys, state.service.list_triggers(workflow=str(wf.id)))
    rows = []
    for tr in triggers:
        preview = state.service.next_fire_times(str(tr.id), 10) if tr.state not in ("COMPLETE",) else []
        rows.append({"t": tr, "description": spec_from_stored(tr.spec).describe(), "preview": preview})
    steps = public_workflow(state, wf).steps
    recent = state.service.history(workflow=str(wf.id), limit=10)
    return render(request, "workflow.html", title=wf.name, wf=wf, triggers=rows, steps=steps, recent=recent)


@router.post("/workflows/{ref}/run")
def run_now(request: Request, ref: str, session: Session, form: Form, state: State) -> Response:
    checked_post(session, form)
    wf = state.workflow_for(session.principal, ref)
    _, execution_id = state.service.run_workflow(str(wf.id), app=state.celery(), user_id=session.principal.user_id)
    return redirect(request, f"/executions/{execution_id}")


@router.get("/workflows/{ref}/delete", name="confirm_delete_workflow")
def confirm_delete_workflow(request: Request, ref: str, session: Session, state: State) -> Response:
    wf = state.workflow_for(session.principal, ref)
    return render(
        request,
        "confirm.html",
        title=f"Delete {wf.name}?",
        what=f"workflow '{wf.name}' with its triggers and its whole history",
        action=f"/workflows/{wf.id}/delete",
        back=f"/workflows/{wf.id}",
    )


@router.post("/workflows/{ref}/delete")
def delete_workflow(request: Request, ref: str, session: Session, form: Form, state: State) -> Response:
    checked_post(session, form)
    if form.get("confirm") != "yes":
        raise Refused(422, "confirm: tick the box to confirm the deletion")
    wf = state.workflow_for(session.principal, ref)
    state.service.delete_workflow(str(wf.id))
    return redirect(request, "/workflows", msg="workflow-deleted")


# -- triggers ------------------------------------------------------------------------------------
def _trigger_action(
    request: Request, ref: str, session: Any, form: dict[str, str], state: Any, action: str
) -> Response:
    checked_post(session, form)
    tr = state.trigger_for(session.principal, parse_uuid(ref, "trigger"))
    if action == "pause":
        state.service.pause_trigger(str(tr.id))
        msg = "paused"
    else:
        state.service.resume_trigger(str(tr.id))
        msg = "resumed"
    return redirect(request, f"/workflows/{tr.workflow_id}", msg=msg)


@router.post("/triggers/{ref}/pause")
def pause(request: Request, ref: str, session: Session, form: Form, state: State) -> Response:
    return _trigger_action(request, ref, session, form, state, "pause")


@router.post("/triggers/{ref}/resume")
def resume(request: Request, ref: str, session: Session, form: Form, state: State) -> Response:
    return _trigger_action(request, ref, session, form, state, "resume")


@router.get("/triggers/{ref}/delete", name="confirm_delete_trigger")
def confirm_delete_trigger(request: Request, ref: str, session: Session, state: State) -> Response:
    tr = state.trigger_for(session.principal, parse_uuid(ref, "trigger"))
    return render(
        request,
        "confirm.html",
        title=f"Delete trigger {tr.name}?",
        what=f"trigger '{tr.name}' of workflow '{tr.workflow}' (its history is kept)",
        action=f"/triggers/{tr.id}/delete",
        back=f"/workflows/{tr.workflow_id}",
    )


@router.post("/triggers/{ref}/delete")
def delete_trigger(request: Request, ref: str, session: Session, form: Form, state: State) -> Response:
    checked_post(session, form)
    if form.get("confirm") != "yes":
        raise Refused(422, "confirm: tick the box to confirm the deletion")
    tr = state.trigger_for(session.principal, parse_uuid(ref, "trigger"))
    state.service.delete_trigger(str(tr.id))
    return redirect(request, f"/workflows/{tr.workflow_id}", msg="trigger-deleted")


# -- history -------------------------------------------------------------------------------------
def _parse_time(value: str, field: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field}: '{value[:40]}' is not a date and time (e.g. 2026-01-01T09:00, read as UTC)", field=field
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


@router.get("/history", name="history")
def history(
    request: Request,
    session: Session,
    state: State,
    workflow: str = "",
    trigger: str = "",
    status: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    filters = {"workflow": workflow[:200], "trigger": trigger[:80], "status": status[:20], "since": since[:40],
               "until": until[:40]}
    now = datetime.now(UTC)
    end = _parse_time(until, "until") or now
    start = _parse_time(since, "since") or end - timedelta(hours=24)
    if end <= start:
        raise InvalidInput("until: must be after since", field="until")
    if end - start > timedelta(days=31):
        raise InvalidInput("since: the window from since to until is at most 31 days", field="since")
    if status and status.strip().lower() not in STATUSES:
        raise InvalidInput(f"status: '{status[:20]}' is not one of {', '.join(STATUSES)}", field="status")
    query: dict[str, Any] = {"owner": _owner(session), "since": start}
    if workflow.strip():
        query["workflow"] = str(state.workflow_for(session.principal, workflow).id)
    if trigger.strip():
        query["trigger"] = str(state.trigger_for(session.principal, parse_uuid(trigger, "trigger")).id)
    before = (end, parse_uuid("ffffffff-ffff-ffff-ffff-ffffffffffff", "until"))
    strip_rows = state.service.history(limit=data.ROW_LIMIT, before=before, **query)
    rows = state.service.history(limit=PAGE + 1, before=before, status=status.strip() or None, **query)
    older = None
    if len(rows) > PAGE:  # the next page ends just before the oldest row shown
        rows = rows[:PAGE]
        cursor = rows[-1].created_at - timedelta(microseconds=1)
        older = urlencode({**{k: v for k, v in filters.items() if v}, "until": cursor.isoformat()})
    return render(
        request,
        "history.html",
        title="History",
        rows=rows,
        filters=filters,
        statuses=STATUSES,
        strip=data.heat_strip(strip_rows, start, end),
        capped=len(strip_rows) >= data.ROW_LIMIT,
        older=older,
        page_size=PAGE,
        live=any(r.status in STATUSES and not ExecutionStatus(r.status).is_final for r in rows),
        start=start,
        end=end,
    )


@router.get("/executions/{ref}", name="execution")
def execution(request: Request, ref: str, session: Session, state: State) -> Response:
    ex = state.execution_for(session.principal, parse_uuid(ref, "execution"))
    steps = redact(ex.steps, state.settings.redact_keys)
    extra = {"lock fence": ex.fence}
    return render(
        request,
        "execution.html",
        title=f"Execution {str(ex.id)[:8]}",
        ex=ex,
        steps=steps,
        extra=extra,
        live=ex.status in STATUSES and not ExecutionStatus(ex.status).is_final,
    )


def not_found_page(request: Request, exc: NotFound) -> Response:
    return render(request, "error.html", 404, title="Not found", status=404, detail=str(exc))
