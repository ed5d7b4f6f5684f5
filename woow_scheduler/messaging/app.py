"""The Celery app factory.  Nothing here runs on import; ``create_app(settings)`` builds an app."""

from __future__ import annotations

from typing import Any

from celery import Celery

from ..keys import Keys
from ..redis_store import SentinelURL, is_sentinel_url
from ..settings import Settings
from .payload import TASK_EXECUTE

__all__ = ["TASK_EXECUTE", "celery_config", "create_app"]


def celery_config(settings: Settings) -> dict[str, Any]:
    keys = Keys(settings.key_prefix)
    broker = settings.effective_broker_url
    conf: dict[str, Any] = {
        "broker_url": broker,
        "result_backend": settings.effective_result_backend,
        "result_expires": 24 * 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "enable_utc": True,
        "timezone": "UTC",
        # reliability: a fire is acknowledged only when it has been recorded; a killed worker's
        # message goes back to the queue
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": settings.queue,
        "task_routes": {TASK_EXECUTE: {"queue": settings.queue}},
        # Flower needs the workers' events (received/started/succeeded/failed) ...
        "worker_send_task_events": True,
        # ... but not a "sent" event per publish: with the Redis transport it costs a second client
        # and round trip per fire (about 40% of beat's publish time, measured), on beat's hot path.
        "task_send_sent_event": False,
        "broker_connection_retry_on_startup": True,
        # RedBeat, under our prefix
        "redbeat_redis_url": settings.redis_url,
        "redbeat_key_prefix": Keys(settings.key_prefix).redbeat_prefix,
        "redbeat_lock_key": keys.redbeat_lock,
        "redbeat_lock_timeout": int(max(2, settings.beat_lock_timeout)),
        "beat_max_loop_interval": settings.beat_max_loop_interval,
        # our scheduler (scheduler/beat.py, named through its shim): `celery -A ... beat` needs no -S
        "beat_scheduler": "woow_scheduler.beat:WoowScheduler",
        # explicit, so RedBeat neither borrows broker_transport_options nor blocks forever on a dead socket
        "redbeat_redis_options": {"socket_connect_timeout": 5, "socket_timeout": 10, "health_check_interval": 30},
    }
    if is_sentinel_url(settings.redis_url):  # RedBeat asks the sentinels for the master
        redbeat = SentinelURL.parse(settings.redis_url)
        url, options = redbeat.redbeat()
        # the master's TLS; explicit, so RedBeat never borrows broker_use_ssl (a dict means TLS on)
        conf["redbeat_redis_use_ssl"] = redbeat.use_ssl() or False
        conf["redbeat_redis_url"] = url
        conf["redbeat_redis_options"] = {**conf["redbeat_redis_options"], **options}
    if broker.startswith(("redis://", "rediss://")) or is_sentinel_url(broker):
        if settings.broker_client_reuse and not is_sentinel_url(broker):
            conf["broker_transport"] = "woow_scheduler.messaging.broker:Transport"
        conf["broker_transport_options"] = {
            "visibility_timeout": settings.visibility_timeout,
            "global_keyprefix": keys.broker_prefix,
            # sweep for messages of dead workers (unacked past the visibility timeout) every tenth
            # of the timeout, within 1..60 s; kombu's default sweeps only about every 100 s
            "unacked_restore_interval": max(1, min(60, settings.visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
        }
        if is_sentinel_url(broker):  # kombu's Sentinel transport: one URL per sentinel + the master's name
            sentinel = SentinelURL.parse(broker)
            conf["broker_url"] = sentinel.kombu_url()
            conf["broker_transport_options"].update(sentinel.kombu_options())
            if sentinel.ssl:  # the master's TLS: kombu reads it from here, not from the transport options
                conf["broker_use_ssl"] = sentinel.use_ssl()
                conf.setdefault("redbeat_redis_use_ssl", False)  # RedBeat would borrow it for a rediss:// URL
    result = conf["result_backend"]
    if result.startswith(("redis://", "rediss://")) or is_sentinel_url(result):
        conf["result_backend_transport_options"] = {"global_keyprefix": keys.results_prefix}
        if is_sentinel_url(result):
            sentinel = SentinelURL.parse(result)
            conf["result_backend"] = sentinel.kombu_url()
            conf["result_backend_transport_options"].update(sentinel.kombu_options())
            if sentinel.ssl:
                conf["redis_backend_use_ssl"] = sentinel.use_ssl()
    return conf


def create_app(settings: Settings, *, main: str = "woow") -> Celery:
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.woow_settings = settings
    from .. import metrics
    from ..logconfig import install

    install(app, settings.log_format)
    metrics.install(app, settings)
    return app
