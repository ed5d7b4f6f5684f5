"""Redis client factory (no module-level clients), and the one reading of Redis Sentinel URLs.

``WOOW_REDIS_URL`` (and ``WOOW_BROKER_URL``) may name a Sentinel set-up instead of one server::

    sentinel://:PASSWORD@host1:26379,host2:26379,host3:26379/0?master=mymaster
    redis-sentinel://...                      (the same; RedBeat's spelling)
    sentinel://:PW@host1:26379;sentinel://:PW@host2:26379/0?master=...   (kombu's spelling)

``PASSWORD`` (and a user name before it) is the Redis master's; the query holds ``master`` (the
monitored master's name, default ``mymaster``), ``sentinel_password`` when the sentinels
themselves require one, and ``ssl=true`` for TLS to the master and the sentinels.  Every
consumer gets the same set-up in its own dialect from :class:`SentinelURL`: our clients (locks,
beat state) from :func:`make_redis`, kombu's broker and Celery's result backend (URL + transport
options), RedBeat (URL + ``redbeat_redis_options``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from .errors import StoreUnavailable

SENTINEL_SCHEMES = ("sentinel://", "redis-sentinel://")
DEFAULT_MASTER = "mymaster"
_TRUE = {"1", "true", "yes", "on"}


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


@dataclass(frozen=True)
class SentinelURL:
    """A Redis Sentinel set-up named by one URL (see the module's docstring)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str = DEFAULT_MASTER
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False

    @classmethod
    def parse(cls, url: str) -> SentinelURL:
        """Raises ``ValueError`` naming what is wrong (a settings validator turns it into one line)."""
        if not is_sentinel_url(url):
            raise ValueError(f"'{hide_password(url)}' is not a sentinel:// or redis-sentinel:// URL")
        parts = [p for p in url.split(";") if p.strip()]
        hosts: list[tuple[str, int]] = []
        username = password = None
        db = 0
        query: dict[str, list[str]] = {}
        for part in parts:
            scheme_less = part.strip().split("://", 1)[1] if "://" in part else part.strip()
            split = urlsplit("//" + scheme_less)
            if split.password is not None or split.username:
                username = unquote(split.username) if split.username else None
                password = unquote(split.password) if split.password is not None else None
            netloc = split.netloc.rsplit("@", 1)[-1]
            for hostport in filter(None, netloc.split(",")):
                host, _, port = hostport.rpartition(":")
                if not host or not port.isdigit():
                    raise ValueError(f"sentinel '{hostport}' must be host:port (e.g. 10.0.0.5:26379)")
                hosts.append((host.strip("[]"), int(port)))
            path = split.path.strip("/")
            if path:
                if not path.isdigit():
                    raise ValueError(f"database '{path}' must be a number (the path of the URL, e.g. /0)")
                db = int(path)
            query.update(parse_qs(split.query))
        if not hosts:
            raise ValueError("no sentinel host:port in the URL")
        unknown = set(query) - {"master", "master_name", "service_name", "sentinel_password", "ssl"}
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}: use master, sentinel_password, ssl")
        master = (query.get("master") or query.get("master_name") or query.get("service_name") or [DEFAULT_MASTER])[0]
        return cls(
            sentinels=tuple(hosts),
            master=master,
            db=db,
            username=username,
            password=password,
            sentinel_password=(query.get("sentinel_password") or [""])[0] or None,
            ssl=(query.get("ssl") or ["false"])[0].lower() in _TRUE,
        )

    # -- each consumer's dialect ---------------------------------------------------------------
    def _auth(self) -> str:
        if self.password is None and not self.username:
            return ""
        user = quote(self.username or "", safe="")
        return f"{user}:{quote(self.password or '', safe='')}@"

    def sentinel_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
        if self.sentinel_password:
            kw["password"] = self.sentinel_password
        if self.ssl:
            kw["ssl"] = True
        return kw

    def kombu_url(self) -> str:
        """kombu's broker / Celery's result backend URL: one ``sentinel://`` per sentinel, ';'-joined."""
        return ";".join(f"sentinel://{self._auth()}{h}:{p}/{self.db}" for h, p in self.sentinels)

    def kombu_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"master_name": self.master, "sentinel_kwargs": self.sentinel_kwargs()}
        if self.ssl:
            opts["ssl"] = True
        return opts

    def redbeat(self) -> tuple[str, dict[str, Any]]:
        """``redbeat_redis_url`` and ``redbeat_redis_options`` for RedBeat's Sentinel branch."""
        h, p = self.sentinels[0]
        options: dict[str, Any] = {
            "sentinels": [list(s) for s in self.sentinels],
            "service_name": self.master,
            "db": self.db,
            "password": self.password,
            "sentinel_kwargs": self.sentinel_kwargs(),
            "socket_timeout": 10,
        }
        if self.username:
            options["username"] = self.username
        return f"redis-sentinel://{h}:{p}/{self.db}", options

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client of the current master; it follows a failover (asks the sentinels on reconnect)."""
        conn: dict[str, Any] = {"db": self.db}
        if self.password is not None:
            conn["password"] = self.password
        if self.username:
            conn["username"] = self.username
        if self.ssl:
            conn["ssl"] = True
        sentinel = Sentinel(list(self.sentinels), sentinel_kwargs=self.sentinel_kwargs(), **conn)
        client: redis.Redis = sentinel.master_for(self.master, redis_class=redis.Redis, **kwargs)
        return client


def hide_password(url: str) -> str:
    """The URL with every ``:password@`` (a ';'-joined list included) and a ``sentinel_password=``
    replaced by ``***``."""
    url = re.sub(r":[^:@/;]*@", ":***@", url)
    return re.sub(r"(sentinel_password=)[^&;]*", r"\1***", url)


def make_redis(url: str, **kwargs: Any) -> redis.Redis:
    kwargs.setdefault("socket_connect_timeout", 5)
    kwargs.setdefault("socket_timeout", 10)
    kwargs.setdefault("health_check_interval", 30)
    kwargs.setdefault("decode_responses", True)
    if is_sentinel_url(url):
        return SentinelURL.parse(url).client(**kwargs)
    return redis.Redis.from_url(url, **kwargs)


def ping(client: redis.Redis) -> None:
    try:
        client.ping()
    except redis.RedisError as exc:
        raise StoreUnavailable(f"redis: cannot connect ({exc})") from exc


def pack_command(*args: str | bytes | int) -> bytes | None:
    """One Redis command in the wire protocol (RESP): the bytes redis-py's packer gives for
    ``str``, ``bytes`` and ``int`` arguments, in about half its time (the worker's lock scripts
    and beat's in-flight burst commands are sent this way).  ``None`` when an argument is of any
    other type (``bool``, ``float``, a subclass): the caller takes redis-py's own path instead."""
    out = [b"*%d\r\n" % len(args)]
    add = out.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()  # type: ignore[union-attr]
        elif kind is bytes:
            data = arg
        elif kind is int:  # not bool, not an IntEnum: redis-py packs those differently
            data = str(arg).encode()
        else:
            return None
        add(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def bulk(value: str) -> bytes:
    """One argument of a RESP command (see :func:`pack_command`), for a command assembled in parts."""
    data = value.encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)
