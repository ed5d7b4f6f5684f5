"""The HTTP API for front ends, on the same service layer as the CLI.

Nothing is built on import: ``create_api(settings)`` returns a FastAPI app, and
``app_from_env()`` builds one from the ``WOOW_*`` environment (what ``woow api`` runs)::

    uvicorn --factory woow_scheduler.api:app_from_env
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..settings import Settings

__all__ = ["app_from_env", "create_api"]


def create_api(settings: Settings) -> FastAPI:
    from .app import create_api as _create

    return _create(settings)


def app_from_env() -> FastAPI:
    from ..settings import load_settings

    return create_api(load_settings())
