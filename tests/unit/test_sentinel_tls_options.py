"""TLS options of a sentinel URL (ssl_ca_certs, ssl_cert_reqs, ssl_certfile, ssl_keyfile): read,
refused with one line naming the option, and handed to every consumer (our clients, kombu's broker,
Celery's result backend, RedBeat) for the sentinels AND the master.  No server is contacted; the
certificates come from openssl (tests/support/sentinel.py's TLSFiles)."""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from celery import Celery

from tests.support.sentinel import TLSFiles
from woow_scheduler.errors import ConfigError, StoreUnavailable
from woow_scheduler.messaging.app import celery_config
from woow_scheduler.redis_store import SentinelURL, hide_password, make_redis, ping
from woow_scheduler.settings import load_settings

BASE = "sentinel://:m4ster-pw@h1:26379,h2:26379/0?master=m&sentinel_password=s3nt-pw"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return TLSFiles.make(tmp_path_factory.mktemp("tls"))


def _url(tls: TLSFiles) -> str:
    return f"{BASE}&{tls.query()}"


def test_the_options_are_read_and_reach_the_sentinels_and_the_master(tls: TLSFiles) -> None:
    u = SentinelURL.parse(_url(tls) + "&ssl_cert_reqs=required")
    assert (u.ssl, u.ssl_ca_certs, u.ssl_certfile, u.ssl_keyfile) == (
        True, str(tls.ca), str(tls.client_cert), str(tls.client_key))
    master = {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(tls.ca), "ssl_certfile": str(tls.client_cert),
              "ssl_keyfile": str(tls.client_key)}
    assert u.use_ssl() == master
    assert u.sentinel_kwargs() == {"socket_connect_timeout": 2, "socket_timeout": 2, "password": "s3nt-pw",
                                   "ssl": True, **master}
    assert "ssl" not in u.kombu_options()  # kombu ignores it there: the master's TLS is broker_use_ssl
    _, redbeat = u.redbeat()
    assert redbeat["sentinel_kwargs"]["ssl_ca_certs"] == str(tls.ca)
    plain = SentinelURL.parse(BASE)
    assert plain.use_ssl() == {} and plain.tls_kwargs() == {} and "ssl" not in plain.sentinel_kwargs()
    assert SentinelURL.parse(BASE + "&ssl=true").use_ssl() == {"ssl_cert_reqs": ssl.CERT_REQUIRED}  # system CAs
    assert SentinelURL.parse(BASE + "&ssl=yes&ssl_cert_reqs=none").use_ssl() == {"ssl_cert_reqs": ssl.CERT_NONE}


def test_every_consumer_of_the_celery_config_gets_tls_for_the_master(tls: TLSFiles) -> None:
    conf = celery_config(load_settings(redis_url=_url(tls), database_url="sqlite:///x.db"))
    for key in ("broker_use_ssl", "redis_backend_use_ssl", "redbeat_redis_use_ssl"):
        assert conf[key]["ssl_ca_certs"] == str(tls.ca), key
        assert conf[key]["ssl_certfile"] == str(tls.client_cert), key
        assert conf[key]["ssl_cert_reqs"] == ssl.CERT_REQUIRED, key
    for key in ("broker_transport_options", "result_backend_transport_options", "redbeat_redis_options"):
        assert conf[key]["sentinel_kwargs"]["ssl_ca_certs"] == str(tls.ca), key

    # RedBeat reads it as we mean it: its Sentinel's master connections are TLS with our CA
    from redbeat.schedulers import get_redis

    app = Celery("t", set_as_current=False)
    app.conf.update(conf)
    pool = get_redis(app).connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert pool.connection_kwargs["ssl_ca_certs"] == str(tls.ca)
    assert pool.connection_kwargs["ssl_keyfile"] == str(tls.client_key)


def test_no_tls_in_the_url_means_none_anywhere(tls: TLSFiles) -> None:
    # a TLS broker of its own must not lend RedBeat (on a plain sentinel set-up) its broker_use_ssl
    conf = celery_config(load_settings(redis_url=BASE, broker_url=_url(tls), database_url="sqlite:///x.db"))
    assert conf["redbeat_redis_use_ssl"] is False
    assert conf["broker_use_ssl"]["ssl_ca_certs"] == str(tls.ca)
    assert "redis_backend_use_ssl" not in conf  # the result backend follows redis_url: plain
    plain = celery_config(load_settings(redis_url=BASE, database_url="sqlite:///x.db"))
    assert "broker_use_ssl" not in plain and plain["redbeat_redis_use_ssl"] is False
    # nor RedBeat on a rediss:// server: it keeps that URL's own TLS options
    rediss = f"rediss://127.0.0.1:6380/0?ssl_cert_reqs=required&ssl_ca_certs={tls.server_cert}"
    conf = celery_config(load_settings(redis_url=rediss, broker_url=_url(tls), database_url="sqlite:///x.db"))
    assert conf["redbeat_redis_use_ssl"] is False and conf["broker_use_ssl"]["ssl_ca_certs"] == str(tls.ca)
    assert "redbeat_redis_use_ssl" not in celery_config(load_settings(redis_url=rediss, database_url="sqlite:///x.db"))


def test_our_client_speaks_tls_to_the_master_and_the_sentinels(tls: TLSFiles) -> None:
    client = make_redis(_url(tls))
    pool = client.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert pool.connection_kwargs["ssl_ca_certs"] == str(tls.ca)
    sentinel = pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["ssl_ca_certs"] == str(tls.ca)
    assert sentinel.connection_pool.connection_class.__name__ == "SSLConnection"


def _bad(tmp_path: Path, tls: TLSFiles) -> list[tuple[str, str]]:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    enc_key = tmp_path / "enc.key"
    subprocess.run(["openssl", "genrsa", "-aes128", "-passout", "pass:x", "-out", str(enc_key), "2048"],
                   check=True, capture_output=True, timeout=60)
    enc_cert = tmp_path / "enc.pem"
    subprocess.run(["openssl", "req", "-new", "-x509", "-key", str(enc_key), "-passin", "pass:x", "-out",
                    str(enc_cert), "-subj", "/CN=x", "-days", "1"], check=True, capture_output=True, timeout=60)
    missing = tmp_path / "nope" / "ca.pem"
    return [
        ("ssl=ture", "ssl='ture' must be true or false"),
        (f"ssl_ca_certs={tls.ca}", "ssl_ca_certs given but TLS is off: add ssl=true"),
        ("ssl=false&ssl_cert_reqs=none", "ssl_cert_reqs given but TLS is off"),
        (f"ssl=true&ssl_ca_certs={missing}", f"ssl_ca_certs={missing} is not a file"),
        (f"ssl=true&ssl_ca_certs={tmp_path}", f"ssl_ca_certs={tmp_path} is not a file"),
        (f"ssl=true&ssl_ca_certs={garbage}", f"ssl_ca_certs={garbage} holds no PEM certificate"),
        ("ssl=true&ssl_cert_reqs=maybe", "ssl_cert_reqs='maybe' must be one of required, optional, none"),
        (f"ssl=true&ssl_keyfile={tls.client_key}", "ssl_keyfile given without ssl_certfile"),
        (f"ssl=true&ssl_certfile={missing}", f"ssl_certfile={missing} is not a file"),
        (f"ssl=true&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.server_key}",
         f"ssl_certfile={tls.client_cert} with ssl_keyfile={tls.server_key}: not a PEM certificate and its "
         "private key"),
        (f"ssl=true&ssl_certfile={enc_cert}&ssl_keyfile={enc_key}", "the key is encrypted"),
        ("ssl=true&ssl_ca_cert=/etc/ca.pem", "unknown option(s) ssl_ca_cert: use master, sentinel_password, ssl, "
                                             "ssl_ca_certs, ssl_cert_reqs, ssl_certfile, ssl_keyfile"),
    ]


def test_bad_tls_options_are_one_line_naming_the_option_without_any_secret(tmp_path: Path, tls: TLSFiles) -> None:
    for query, words in _bad(tmp_path, tls):
        url = f"{BASE}&{query}"
        for setting, kwargs in (("WOOW_REDIS_URL", {"redis_url": url}), ("WOOW_BROKER_URL", {"broker_url": url})):
            with pytest.raises(ConfigError) as err:
                load_settings(**kwargs)
            text = str(err.value)
            assert text.startswith(f"setting {setting}: ") and words in text and "\n" not in text, (query, text)
            assert "m4ster-pw" not in text and "s3nt-pw" not in text, text


def test_paths_survive_hide_password(tls: TLSFiles) -> None:
    shown = hide_password(_url(tls))
    assert "m4ster-pw" not in shown and "s3nt-pw" not in shown
    assert f"ssl_ca_certs={tls.ca}" in shown and f"ssl_keyfile={tls.client_key}" in shown


@pytest.mark.parametrize(("url", "shown"), [
    ("sentinel://:pa:ss@h:1/0", "sentinel://:***@h:1/0"),
    ("sentinel://u:pa:ss@h:1;sentinel://u:pa:ss@g:2/0?sentinel_password=a:b",
     "sentinel://u:***@h:1;sentinel://u:***@g:2/0?sentinel_password=***"),
    ("redis://:p/w@h:1/0", "redis://:***@h:1/0"),
    ("redis://:p@w@h:1/0", "redis://:***@h:1/0"),
    ("sentinel://:pw@h:1/0?ssl=true&ssl_ca_certs=/a:b@c/ca.pem", "sentinel://:***@h:1/0?ssl=true&ssl_ca_certs=/a:b@c/ca.pem"),
    ("rediss://h:1/0?ssl_ca_certs=/x@y:z/ca.pem", "rediss://h:1/0?ssl_ca_certs=/x@y:z/ca.pem"),
    ("redis://user@h:1/0", "redis://user@h:1/0"),
])
def test_a_password_with_colons_slashes_or_ats_is_hidden_whole(url: str, shown: str) -> None:
    assert hide_password(url) == shown


def test_no_master_found_names_each_sentinels_error_in_a_short_line() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])  # closed again: connections are refused
    url = f"sentinel://:m4ster-pw@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/0?master=m&sentinel_password=s3nt-pw"
    with pytest.raises(StoreUnavailable) as err:
        ping(make_redis(url, socket_timeout=1, socket_connect_timeout=1))
    text = str(err.value)
    assert text.startswith("redis: cannot connect (No master found for 'm': ")
    for port in ports:  # redis-py's own message spent 1-2 KB on each sentinel client's repr first
        assert f"127.0.0.1:{port}: " in text and f"Error 111 connecting to 127.0.0.1:{port}" in text
    assert len(text) < 400 and "<redis" not in text, text
    assert "m4ster-pw" not in text and "s3nt-pw" not in text
