"""Liveness, readiness (PostgreSQL, Redis, an active beat) and Prometheus metrics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import select

from ..db.models import SchedulerInstance
from ..enums import InstanceKind
from ..errors import StoreUnavailable
from ..permissions import ADMIN, METRICS
from ..redis_store import ping as redis_ping
from .auth import State, User
from .metrics import WoowCollector
from .models import Health

log = logging.getLogger("woow.api")

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the API process answers")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis answer and a beat is active",
    responses={503: {"model": Health, "description": "Not ready; `checks` says what failed"}},
)
def readyz(state: State) -> Any:
    checks: dict[str, Any] = {}
    try:
        state.db.ping()
        checks["database"] = {"ok": True}
    except StoreUnavailable as exc:  # the reason goes to the log, never to an anonymous caller
        log.warning("readyz: database: %s", exc)
        checks["database"] = {"ok": False, "error": "database unreachable"}
    try:
        redis_ping(state.redis)
        checks["redis"] = {"ok": True}
    except StoreUnavailable as exc:
        log.warning("readyz: redis: %s", exc)
        checks["redis"] = {"ok": False, "error": "redis unreachable"}
    checks["beat"] = beat_check(state, redis_ok=checks["redis"]["ok"], db_ok=checks["database"]["ok"])
    ready = all(c["ok"] for c in checks.values())
    body = Health(status="ready" if ready else "not ready", checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ready else 503)


def beat_check(state: Any, *, redis_ok: bool, db_ok: bool, now: datetime | None = None) -> dict[str, Any]:
    """An active beat: the state hash it writes each tick while it holds the lock (fresh, lock held),
    else a leader row in ``scheduler_instances`` with a fresh heartbeat."""
    now = now or datetime.now(UTC)
    settings = state.settings
    if redis_ok:
        try:
            info: dict[str, str] = state.redis.hgetall(state.keys.beat_state)
            if info.get("last_tick"):
                age = (now - datetime.fromisoformat(info["last_tick"])).total_seconds()
                limit = max(float(info.get("lock_timeout") or settings.beat_lock_timeout), 5.0)
                lock_ttl = state.redis.pttl(state.keys.redbeat_lock)
                ok = age <= limit and lock_ttl is not None and lock_ttl > 0
                return {
                    "ok": ok,
                    "source": "redis",
                    "instance": info.get("instance"),
                    "last_tick_age_s": round(age, 3),
                    **({} if ok else {"error": "no recent tick of a beat holding the lock"}),
                }
        except Exception as exc:  # an unreadable state hash: fall through to the heartbeat table
            log.warning("readyz: cannot read the beat state: %s", exc)
    if db_ok:
        fresh = now - timedelta(seconds=3 * settings.heartbeat_interval)
        try:
            with state.db.session() as s:
                row = s.scalar(
                    select(SchedulerInstance)
                    .where(
                        SchedulerInstance.kind == InstanceKind.BEAT,
                        SchedulerInstance.is_leader.is_(True),
                        SchedulerInstance.last_heartbeat >= fresh,
                    )
                    .limit(1)
                )
        except Exception as exc:
            log.warning("readyz: cannot read scheduler_instances: %s", exc)
            return {"ok": False, "error": "cannot read the scheduler heartbeats"}
        if row is not None:
            return {"ok": True, "source": "database", "instance": row.id}
    return {"ok": False, "error": "no active beat"}


@router.get(
    "/metrics",
    summary="Prometheus metrics (token with the 'metrics' or 'admin' scope)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(state: State, user: User) -> Response:
    if not user.is_admin and METRICS not in user.scopes and ADMIN not in user.scopes:
        raise HTTPException(403, "authorization: /metrics needs a token with the 'metrics' or 'admin' scope")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WoowCollector(state))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
