"""Settings: one object, built once at the entry point and passed down.

Sources, highest precedence first: keyword arguments, ``WOOW_*`` environment variables, the
TOML file named by ``WOOW_CONFIG`` (see ``config/woow.example.toml``), then the defaults below.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from .errors import ConfigError
from .redis_store import SentinelURL, hide_password, is_sentinel_url

ENV_PREFIX = "WOOW_"


class _TomlFileSource(PydanticBaseSettingsSource):
    """Reads the optional TOML file named by ``WOOW_CONFIG``.

    Keys are the setting names without the prefix (``database_url = "..."``), either at the top
    level or under a ``[woow]`` table.
    """

    def __init__(self, settings_cls: type[BaseSettings], path: str | None) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path:
            return {}
        path = Path(self.path).expanduser()
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"WOOW_CONFIG: file '{path}' does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"WOOW_CONFIG: '{path}' is not valid TOML: {exc}") from None
        table = data.get("woow", data)
        if not isinstance(table, dict):
            raise ConfigError(f"WOOW_CONFIG: '{path}': [woow] must be a table")
        known = set(self.settings_cls.model_fields)
        unknown = sorted(k for k in table if k not in known)
        if unknown:
            raise ConfigError(
                f"WOOW_CONFIG: '{path}': unknown setting '{unknown[0]}' (known: {', '.join(sorted(known))})"
            )
        return dict(table)


class Settings(BaseSettings):
    """Every knob of woow-scheduler.  Environment variable = ``WOOW_`` + upper-case name."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True)

    # -- stores ---------------------------------------------------------------------------
    database_url: str = Field(
        default="sqlite:///./woow.db",
        description="SQLAlchemy URL of the database (PostgreSQL in production; SQLite file by default).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0",
        description="Redis for the RedBeat schedule and the per-workflow locks (and, by default, the broker): "
        "redis://, rediss:// (TLS), or a Sentinel set-up: "
        "sentinel://:PASSWORD@h1:26379,h2:26379,h3:26379/0?master=NAME[&sentinel_password=PW][&ssl=true"
        "[&ssl_ca_certs=/path/ca.pem][&ssl_cert_reqs=required][&ssl_certfile=/path/c.pem&ssl_keyfile=/path/c.key]].",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker URL; defaults to redis_url (sentinel:// and amqp:// work too)."
    )
    result_backend: str | None = Field(default=None, description="Celery result backend; defaults to redis_url.")
    key_prefix: str = Field(
        default="woow:",
        description="Prefix of every Redis key the project writes (RedBeat's included).",
    )
    timezone: str = Field(default="UTC", description="Default IANA time zone for new triggers and display.")

    # -- scheduling -----------------------------------------------------------------------
    reconcile_interval: float = Field(
        default=30.0, gt=0, description="Seconds between incremental PostgreSQL -> RedBeat reconciles in beat."
    )
    full_reconcile_interval: float = Field(
        default=600.0, gt=0, description="Seconds between full reconciles in beat (also run at start)."
    )
    beat_lock_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Lifetime of the active beat's lock: a standby takes over at most this long after "
        "the active beat dies.",
    )
    beat_max_loop_interval: float = Field(
        default=1.0, gt=0, le=60, description="Longest sleep of beat between ticks (seconds)."
    )
    heartbeat_interval: float = Field(default=10.0, gt=0, description="Seconds between scheduler_instances heartbeats.")
    sync_batch_size: int = Field(default=2000, ge=1, description="Entries per Redis pipeline in a full sync.")
    beat_dispatch_chunk: int = Field(
        default=500,
        ge=1,
        description="Due entries beat loads and publishes per batch; the beat lock is checked (and extended "
        "when due) between batches, so a burst of any size never outlives the lock.",
    )
    bookkeeping_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between drains of beat's fire records into triggers.previous_fire_time, "
        "next_fire_time and fire_count (one transaction per drain, off beat's hot path).",
    )

    # -- execution ------------------------------------------------------------------------
    queue: str = Field(default="woow", description="Celery queue that execute_workflow tasks go to.")
    lock_ttl: float = Field(default=60.0, gt=0, description="TTL of a per-workflow lock; renewed while running.")
    max_queue_wait: float = Field(
        default=600.0, gt=0, description="How long a 'queue' workflow fire waits for the lock before 'skipped'."
    )
    visibility_timeout: int = Field(
        default=7200,
        gt=0,
        description="Redis broker visibility timeout (s); keep it above the longest workflow timeout.",
    )
    broker_client_reuse: bool = Field(
        default=True,
        description="Redis broker: one client per channel instead of one per command (publishes ~25% "
        "faster); woow flower turns it off so Flower recognises the redis:// broker.",
    )
    fire_journal_grace: float = Field(
        default=60.0,
        ge=0,
        description="Seconds past visibility_timeout after which beat's sweeper publishes again a fire "
        "that has no execution row (its message was lost).",
    )
    db_retry_max: int = Field(
        default=20, ge=0, description="How often a task retries when the database is unreachable."
    )
    enable_shell: bool = Field(
        default=False, description="Allow the 'shell' step strategy (for owners with the 'shell' privilege)."
    )
    shell_programs: list[str] = Field(
        default_factory=list,
        description="Programs (argv[0], exactly as written in the step) shell steps may run; empty: any "
        "program, for owners with the 'shell' privilege.",
    )
    celery_task_names: list[str] = Field(
        default_factory=list,
        description="Task names celery_task steps may send (exact names, or 'prefix.*'); empty: none. "
        "woow's own tasks (woow.*) are never allowed.",
    )
    celery_task_queues: list[str] = Field(
        default_factory=list,
        description="Queues celery_task steps may send to (the first is the default); empty: none. "
        "woow's own queue is never allowed.",
    )
    http_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names http steps of any user may reach even when they resolve to a "
        "non-public address (e.g. an internal API).",
    )
    http_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) http steps of any user may reach although they are not public.",
    )
    http_allow_redirects: bool = Field(
        default=False,
        description="Let http steps of any user follow redirects (each hop is checked like the first "
        "request); otherwise follow_redirects needs the 'http_private' privilege.",
    )
    http_max_redirects: int = Field(default=5, ge=0, le=20, description="Redirects an http step may follow.")
    http_body_cap: int = Field(
        default=8 * 1024, ge=0, le=10 * 1024 * 1024, description="Bytes of an http response body that are read."
    )

    # -- API limits -------------------------------------------------------------------------
    api_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="Largest API request body (bytes).")
    api_max_json_depth: int = Field(default=32, ge=2, le=1000, description="Deepest nesting of an API JSON body.")
    max_steps: int = Field(default=100, ge=1, description="Steps per workflow.")
    max_step_config_bytes: int = Field(default=64 * 1024, ge=256, description="JSON size of one step's config.")
    max_workflows_per_user: int = Field(default=1000, ge=1, description="Workflows an API user may own.")
    max_triggers_per_user: int = Field(default=1000, ge=1, description="Triggers on an API user's workflows.")
    min_interval: float = Field(
        default=60.0,
        ge=0,
        description="Shortest time between two fires of a trigger created by a non-admin API user (seconds).",
    )
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed token lookups per client address per minute before 429."
    )
    metrics_cache_seconds: float = Field(
        default=15.0, ge=0, description="/metrics reads the executions table at most this often (cached in Redis)."
    )
    console_session_ttl: int = Field(
        default=8 * 3600,
        ge=60,
        le=30 * 86_400,
        description="Seconds an operator console session lives from login (revoking its token ends it sooner).",
    )
    python_callables: list[str] = Field(
        default_factory=list,
        description="Allow-listed 'module:function' callables for the 'python' strategy "
        "(in addition to the woow_scheduler.callables entry points).",
    )
    redact_keys: list[str] = Field(
        default_factory=lambda: [
            "password",
            "passwd",
            "secret",
            "token",
            "authorization",
            "api_key",
            "apikey",
            "cookie",
            "auth",
            "credential",
            "private_key",
            "session",
        ],
        description="Step config keys whose values are redacted in logs, history and Flower.",
    )

    # -- ops ------------------------------------------------------------------------------
    log_level: str = Field(default="INFO", description="Log level of woow processes.")
    log_format: str = Field(default="text", description="'text' or 'json' (one JSON object per line).")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Serve Prometheus metrics of this beat or worker on this port (off when unset); "
        "the 'woow beat/worker --metrics-port' option sets it.",
    )
    metrics_address: str = Field(default="0.0.0.0", description="Address the metrics port listens on.")

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone '{value}' (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, value: str) -> str:
        if value.startswith("postgres://"):
            value = "postgresql://" + value[len("postgres://") :]
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value[len("postgresql://") :]
        if not value.startswith(("postgresql+psycopg://", "sqlite://")):
            raise ValueError(
                f"'{value}' is not supported: use postgresql+psycopg://user@host:port/db or sqlite:///path"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis(cls, value: str) -> str:
        if is_sentinel_url(value):
            SentinelURL.parse(value)  # a ValueError names what is wrong
            return value
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"'{value}' is not a redis://, rediss:// or sentinel:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker(cls, value: str | None) -> str | None:
        if value is not None and is_sentinel_url(value):
            SentinelURL.parse(value)
            return value
        if value is not None and not value.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
            raise ValueError(f"'{value}' is not a redis://, sentinel:// or amqp:// URL")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "*" in value:
            raise ValueError(f"'{value}' must be non-empty, without spaces or '*'")
        return value

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        up = value.upper()
        if up not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"'{value}' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return up

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value not in {"text", "json"}:
            raise ValueError(f"'{value}' must be 'text' or 'json'")
        return value

    @model_validator(mode="after")
    def _check_lock(self) -> Settings:
        if self.beat_lock_timeout < 2 * self.beat_max_loop_interval:
            raise ValueError(
                "beat_lock_timeout must be at least twice beat_max_loop_interval "
                f"({self.beat_lock_timeout} < 2 x {self.beat_max_loop_interval})"
            )
        return self

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_result_backend(self) -> str:
        return self.result_backend or self.redis_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            _TomlFileSource(settings_cls, os.environ.get(f"{ENV_PREFIX}CONFIG")),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning any validation problem into one ``ConfigError`` line."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        msg = str(err["msg"]).removeprefix("Value error, ")
        value = err.get("input")
        if isinstance(value, str) and "://" in value:
            value = hide_password(value)  # a URL's password never reaches a terminal or a log
        shown = f" (got {value!r})" if not isinstance(value, dict) and value is not None else ""
        if name == "settings" or not err["loc"]:
            raise ConfigError(f"settings: {msg}") from None
        raise ConfigError(f"setting {ENV_PREFIX}{name.upper()}: {msg}{shown}") from None
