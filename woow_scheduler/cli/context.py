"""What CLI commands share: settings, database, Redis and the service, built lazily on first use."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import click

from ..db.session import Database
from ..settings import Settings, load_settings

if TYPE_CHECKING:
    import redis

    from ..service import Service


class AppContext:
    def __init__(self, *, debug: bool = False, overrides: dict[str, Any] | None = None) -> None:
        self.debug = debug
        self._overrides = overrides or {}

    @cached_property
    def settings(self) -> Settings:
        return load_settings(**self._overrides)

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def redis(self) -> redis.Redis:
        from ..redis_store import make_redis

        return make_redis(self.settings.redis_url, socket_connect_timeout=2, socket_timeout=5)

    @cached_property
    def service(self) -> Service:
        from ..service import Service

        return Service(self.db, self.settings, mirror=self.mirror(), redis_client=self.redis)

    def mirror(self) -> Any:
        """The write-through schedule mirror (RedBeat), or None when the sync layer is absent."""
        try:
            from ..scheduler.sync import RedBeatMirror
        except ImportError:  # pragma: no cover - sync layer not installed
            return None
        return RedBeatMirror(self.settings, self.db, self.redis)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


pass_app = click.make_pass_decorator(AppContext)
