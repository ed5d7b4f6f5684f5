"""Redis client factory (no module-level clients), and the one reading of Redis Sentinel URLs.

``WOOW_REDIS_URL`` (and ``WOOW_BROKER_URL``) may name a Sentinel set-up instead of one server::

    sentinel://:PASSWORD@host1:26379,host2:26379,host3:26379/0?master=mymaster
    redis-sentinel://...                      (the same; RedBeat's spelling)
    sentinel://:PW@host1:26379;sentinel://:PW@host2:26379/0?master=...   (kombu's spelling)

``PASSWORD`` (and a user name before it) is the Redis master's; the query holds ``master`` (the
monitored master's name, default ``mymaster``), ``sentinel_password`` when the sentinels
themselves require one, and ``ssl=true`` for TLS to the master and the sentinels, with
``ssl_ca_certs`` (a CA file of one's own: a company CA, a self-signed certificate),
``ssl_cert_reqs`` (``required``, the default; ``optional``; ``none``) and a client certificate
``ssl_certfile`` + ``ssl_keyfile`` when the servers require one (``tls-auth-clients yes``).
Every consumer gets the same set-up in its own dialect from :class:`SentinelURL`: our clients
(locks, beat state) from :func:`make_redis`, kombu's broker and Celery's result backend (URL +
transport options + ``broker_use_ssl`` / ``redis_backend_use_ssl``), RedBeat (URL +
``redbeat_redis_options`` + ``redbeat_redis_use_ssl``).  The TLS settings reach the sentinel
connections and the master connections of every one of them.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

from .errors import StoreUnavailable

SENTINEL_SCHEMES = ("sentinel://", "redis-sentinel://")
DEFAULT_MASTER = "mymaster"
_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}
TLS_OPTIONS = ("ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile")
OPTIONS = ("master", "master_name", "service_name", "sentinel_password", "ssl", *TLS_OPTIONS)


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
    ssl_ca_certs: str | None = None  # None: the system's CAs (and SSL_CERT_FILE / SSL_CERT_DIR)
    ssl_cert_reqs: str = "required"
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

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
        unknown = set(query) - set(OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(sorted(unknown))}: use master, sentinel_password, ssl, "
                             + ", ".join(TLS_OPTIONS))
        master = (query.get("master") or query.get("master_name") or query.get("service_name") or [DEFAULT_MASTER])[0]
        tls = {name: query[name][0] for name in TLS_OPTIONS if name in query}
        return cls(
            sentinels=tuple(hosts),
            master=master,
            db=db,
            username=username,
            password=password,
            sentinel_password=(query.get("sentinel_password") or [""])[0] or None,
            ssl=_check_tls((query.get("ssl") or ["false"])[0], tls),
            **tls,
        )

    # -- each consumer's dialect ---------------------------------------------------------------
    def _auth(self) -> str:
        if self.password is None and not self.username:
            return ""
        user = quote(self.username or "", safe="")
        return f"{user}:{quote(self.password or '', safe='')}@"

    def use_ssl(self) -> dict[str, Any]:
        """redis-py's TLS arguments (``ssl_cert_reqs`` always, the files given), empty without TLS: the
        dialect of kombu's ``broker_use_ssl``, Celery's ``redis_backend_use_ssl`` and RedBeat's
        ``redbeat_redis_use_ssl`` (each of them reads a dict as "TLS on, with these")."""
        if not self.ssl:
            return {}
        kw: dict[str, Any] = {"ssl_cert_reqs": CERT_REQS[self.ssl_cert_reqs]}
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name):
                kw[name] = getattr(self, name)
        return kw

    def tls_kwargs(self) -> dict[str, Any]:
        """:meth:`use_ssl` with ``ssl=True``: the arguments of a redis-py client (or a sentinel's)."""
        return {"ssl": True, **self.use_ssl()} if self.ssl else {}

    def sentinel_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
        if self.sentinel_password:
            kw["password"] = self.sentinel_password
        kw.update(self.tls_kwargs())
        return kw

    def kombu_url(self) -> str:
        """kombu's broker / Celery's result backend URL: one ``sentinel://`` per sentinel, ';'-joined."""
        return ";".join(f"sentinel://{self._auth()}{h}:{p}/{self.db}" for h, p in self.sentinels)

    def kombu_options(self) -> dict[str, Any]:
        """Transport options: the sentinels' connections.  The master's TLS is not a transport option
        (kombu ignores an ``ssl`` key there): it is ``broker_use_ssl`` / ``redis_backend_use_ssl``."""
        return {"master_name": self.master, "sentinel_kwargs": self.sentinel_kwargs()}

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
        conn.update(self.tls_kwargs())
        sentinel = _Sentinel(list(self.sentinels), sentinel_kwargs=self.sentinel_kwargs(), **conn)
        client: redis.Redis = sentinel.master_for(self.master, redis_class=redis.Redis, **kwargs)
        return client


class _Sentinel(Sentinel):
    """redis-py's ``Sentinel`` whose "no master found" says in one short line what each sentinel
    answered.  redis-py puts a 1-2 KB repr of each sentinel's client before its error, so a log
    line cut at a few hundred characters lost the cause (``[SSL: CERTIFICATE_VERIFY_FAILED]``, a
    refused connection, a wrong sentinel_password) and kept only "No master found"."""

    def discover_master(self, service_name: str) -> Any:
        try:
            return super().discover_master(service_name)
        except MasterNotFoundError as exc:
            causes = _sentinel_errors(str(exc))
            if not causes:
                raise
            raise MasterNotFoundError(f"No master found for {service_name!r}: {'; '.join(causes)}") from None


_CLIENT_REPR = "<redis.client.Redis("
_HOST_PORT = re.compile(r"\bhost=([^,)]+),port=(\d+)")


def _sentinel_errors(message: str) -> list[str]:
    """``host:port: error`` for each sentinel named in redis-py's MasterNotFoundError message."""
    causes = []
    for chunk in message.split(_CLIENT_REPR)[1:]:
        where = _HOST_PORT.search(chunk)
        _, sep, error = chunk.rpartition(")> - ")
        if where and sep:
            causes.append(f"{where[1]}:{where[2]}: {error.removesuffix(', ').strip()}")
    return causes


def _check_tls(flag: str, options: dict[str, str]) -> bool:
    """``ssl`` and the TLS options of a sentinel URL, each refused with one line naming it."""
    if flag.lower() not in _BOOLEANS:
        raise ValueError(f"ssl='{flag}' must be true or false")
    on = _BOOLEANS[flag.lower()]
    if options and not on:
        raise ValueError(f"{', '.join(options)} given but TLS is off: add ssl=true")
    reqs = options.get("ssl_cert_reqs", "required")
    if reqs not in CERT_REQS:
        raise ValueError(f"ssl_cert_reqs='{reqs}' must be one of {', '.join(CERT_REQS)}")
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if name in options and not (os.path.isfile(options[name]) and os.access(options[name], os.R_OK)):
            what = "is not readable" if os.path.isfile(options[name]) else "is not a file"
            raise ValueError(f"{name}={options[name]} {what}")
    context = ssl.create_default_context()
    if "ssl_ca_certs" in options:
        try:
            context.load_verify_locations(cafile=options["ssl_ca_certs"])
        except ssl.SSLError as exc:
            ca = options["ssl_ca_certs"]
            raise ValueError(f"ssl_ca_certs={ca} holds no PEM certificate ({exc.reason or exc})") from None
    if "ssl_keyfile" in options and "ssl_certfile" not in options:
        raise ValueError("ssl_keyfile given without ssl_certfile (the client certificate)")
    if "ssl_certfile" in options:
        files = f"ssl_certfile={options['ssl_certfile']}" + (
            f" with ssl_keyfile={options['ssl_keyfile']}" if "ssl_keyfile" in options else "")
        try:
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"), password=_no_key_password)
        except _EncryptedKey:
            raise ValueError(f"{files}: the key is encrypted (a key without a passphrase is needed)") from None
        except ssl.SSLError as exc:
            raise ValueError(f"{files}: not a PEM certificate and its private key ({exc.reason or exc})") from None
    return on


class _EncryptedKey(Exception):
    pass


def _no_key_password() -> str:
    raise _EncryptedKey  # never prompt on a terminal for a key's passphrase


def hide_password(url: str) -> str:
    """The URL with every ``:password@`` (a ';'-joined list included) and a ``sentinel_password=``
    replaced by ``***``.  The password is all of the user info after its first ':' (up to the last
    '@' before the query), so one holding ':', '/' or '@' is hidden whole, as the parser reads it."""
    url = ";".join(_hide_userinfo(part) for part in url.split(";"))
    return re.sub(r"(sentinel_password=)[^&;]*", r"\1***", url)


def _hide_userinfo(part: str) -> str:
    scheme, sep, rest = part.partition("://")
    if not sep:
        return part
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    user, at, host = rest[:cut].rpartition("@")
    if not at or ":" not in user:
        return part
    return f"{scheme}://{user.split(':', 1)[0]}:***@{host}{rest[cut:]}"


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


# -- commands sent without waiting for their answer ---------------------------------------------------

_PLAIN_CONNECTIONS = (redis.Connection, redis.SSLConnection, redis.UnixDomainSocketConnection)
#: ``CLIENT REPLY SKIP`` in RESP: Redis sends no reply to the command that follows it
REPLY_SKIP = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"


def plain_pool(client: Any) -> bool:
    """True when ``client`` sends on redis-py's own connection pool and connection classes: the only
    clients whose connections :func:`send_unanswered` and hand-packed commands may use directly
    (not fakeredis, not a Sentinel-managed pool, not a subclass with hooks of its own)."""
    pool = getattr(client, "connection_pool", None)
    return type(pool) is redis.ConnectionPool and pool.connection_class in _PLAIN_CONNECTIONS


def unanswered(*commands: bytes) -> bytes:
    """RESP commands (:func:`pack_command`) each preceded by ``CLIENT REPLY SKIP``, as one write."""
    return b"".join(REPLY_SKIP + command for command in commands)


def send_unanswered(client: redis.Redis, *commands: bytes) -> None:
    """Send packed commands on a pooled connection of ``client`` (a :func:`plain_pool` client)
    without waiting for Redis's answer.

    Each command goes out behind ``CLIENT REPLY SKIP`` in one write, so Redis runs it and sends
    nothing back: the connection stays in step for its next user, and the caller does not spend a
    round trip on an answer it has no use for.  A failed write disconnects the connection and
    raises; an *error reply* (a script error, an ACL refusal) is never seen.  The one owner of this
    trick: the worker's unanswered lock release and the transport's task events both send here.
    """
    data = unanswered(*commands)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([data])  # type: ignore[no-untyped-call]
    except BaseException:
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)
