"""Celery worker side of woow-scheduler: the app factory and the ``execute_workflow`` task.

Nothing is built on import.  ``get_app()`` builds the process's app from ``load_settings()`` (the
``WOOW_*`` environment) on first use, and the module attribute ``app`` resolves lazily (PEP 562),
so the Celery command line finds it::

    celery -A woow_scheduler.worker worker -l INFO
    celery -A woow_scheduler.worker beat ...

(Celery's ``-A`` imports the module and reads its ``app`` attribute, which calls ``get_app()``.)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from ..settings import Settings

__all__ = ["get_app"]

_default: Celery | None = None
_apps: dict[int, tuple[Settings, Celery]] = {}
_guard = threading.Lock()


def get_app(settings: Settings | None = None) -> Celery:
    """The Celery app with woow's tasks registered.

    Without ``settings``: the process-wide app, built once from ``load_settings()``.  With
    ``settings``: an app for exactly those settings (built once per settings object), for tests
    and embedding.
    """
    global _default
    from ..messaging.app import create_app
    from ..settings import load_settings
    from .task import register_tasks

    with _guard:
        if settings is None:
            if _default is None:
                app = create_app(load_settings())
                register_tasks(app)
                _default = app
            return _default
        found = _apps.get(id(settings))
        if found is not None and found[0] is settings:
            return found[1]
        app = create_app(settings)
        register_tasks(app)
        _apps[id(settings)] = (settings, app)
        return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return get_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
