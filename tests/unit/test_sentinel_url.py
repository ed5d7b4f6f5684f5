"""Reading Redis Sentinel URLs (pure: no server is contacted)."""

from __future__ import annotations

import pytest

from woow_scheduler.errors import ConfigError
from woow_scheduler.redis_store import SentinelURL, hide_password
from woow_scheduler.settings import load_settings


def test_one_url_gives_every_consumer_its_dialect() -> None:
    u = SentinelURL.parse("redis-sentinel://:p%40ss@h1:26379,h2:26380,h3:26381/2?master=m1&sentinel_password=sp")
    assert u.sentinels == (("h1", 26379), ("h2", 26380), ("h3", 26381))
    assert (u.master, u.db, u.password, u.sentinel_password, u.ssl) == ("m1", 2, "p@ss", "sp", False)
    assert u.kombu_url() == "sentinel://:p%40ss@h1:26379/2;sentinel://:p%40ss@h2:26380/2;sentinel://:p%40ss@h3:26381/2"
    assert u.kombu_options()["master_name"] == "m1"
    assert u.kombu_options()["sentinel_kwargs"]["password"] == "sp"
    url, opts = u.redbeat()
    assert url == "redis-sentinel://h1:26379/2"
    assert opts["sentinels"] == [["h1", 26379], ["h2", 26380], ["h3", 26381]]
    assert (opts["service_name"], opts["password"], opts["db"]) == ("m1", "p@ss", 2)


def test_kombu_spelling_and_defaults() -> None:
    u = SentinelURL.parse("sentinel://:pw@h1:26379;sentinel://:pw@h2:26379/0?master=x&ssl=true")
    assert u.sentinels == (("h1", 26379), ("h2", 26379)) and u.master == "x" and u.password == "pw" and u.ssl
    plain = SentinelURL.parse("sentinel://h1:26379")
    assert (plain.master, plain.db, plain.password, plain.sentinel_password) == ("mymaster", 0, None, None)


@pytest.mark.parametrize(("url", "words"), [
    ("sentinel://:pw@h1/0", "must be host:port"),
    ("sentinel://h1:1/x", "must be a number"),
    ("sentinel://h1:1?mastr=m", "unknown option(s) mastr"),
    ("sentinel://", "no sentinel host:port"),
])
def test_bad_sentinel_urls_are_one_line_naming_the_setting_without_the_password(url: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(redis_url=url)
    text = str(err.value)
    assert text.startswith("setting WOOW_REDIS_URL: ") and words in text and "\n" not in text
    assert ":pw@" not in text
    with pytest.raises(ConfigError, match="WOOW_BROKER_URL"):
        load_settings(broker_url=url)


def test_hide_password() -> None:
    assert hide_password("sentinel://:a@h:1;sentinel://:a@g:2/0") == "sentinel://:***@h:1;sentinel://:***@g:2/0"
    assert hide_password("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert hide_password("sentinel://:a@h:1/0?master=m&sentinel_password=s3&ssl=true") == (
        "sentinel://:***@h:1/0?master=m&sentinel_password=***&ssl=true")
    assert hide_password("amqp://guest:guest@127.0.0.1:5672/vh") == "amqp://guest:***@127.0.0.1:5672/vh"
