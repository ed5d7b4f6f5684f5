from __future__ import annotations

import re
from pathlib import Path

import pytest

from woow_scheduler.errors import ConfigError
from woow_scheduler.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("WOOW_"):
            monkeypatch.delenv(key)


def test_defaults() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./woow.db"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.effective_broker_url == s.redis_url
    assert s.key_prefix == "woow:"
    assert s.timezone == "UTC"
    assert s.lock_ttl == 60
    assert s.beat_lock_timeout <= 30  # a standby takes over within 30 s
    assert s.enable_shell is False


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WOOW_DATABASE_URL", "postgresql://postgres@db:5432/woow")
    monkeypatch.setenv("WOOW_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
    monkeypatch.setenv("WOOW_LOCK_TTL", "15")
    monkeypatch.setenv("WOOW_PYTHON_CALLABLES", '["mymod:job"]')
    s = load_settings()
    assert s.database_url == "postgresql+psycopg://postgres@db:5432/woow"  # driver made explicit
    assert s.effective_broker_url.startswith("amqp://")
    assert s.lock_ttl == 15
    assert s.python_callables == ["mymod:job"]


def test_config_file_and_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "woow.toml"
    cfg.write_text('[woow]\nkey_prefix = "prod:"\ntimezone = "Europe/Berlin"\nlock_ttl = 30\n')
    monkeypatch.setenv("WOOW_CONFIG", str(cfg))
    monkeypatch.setenv("WOOW_LOCK_TTL", "45")
    s = load_settings()
    assert s.key_prefix == "prod:"
    assert s.timezone == "Europe/Berlin"
    assert s.lock_ttl == 45  # the environment beats the file


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("WOOW_LOCK_TTL", "-1", r"^setting WOOW_LOCK_TTL: .*greater than 0"),
        ("WOOW_TIMEZONE", "Mars/Base", r"^setting WOOW_TIMEZONE: unknown IANA time zone 'Mars/Base'"),
        ("WOOW_DATABASE_URL", "mysql://x", r"^setting WOOW_DATABASE_URL: 'mysql://x' is not supported"),
        ("WOOW_REDIS_URL", "http://x", r"^setting WOOW_REDIS_URL: 'http://x' is not a redis://, rediss:// or sentinel://"),
        ("WOOW_KEY_PREFIX", "a b", r"^setting WOOW_KEY_PREFIX: "),
        ("WOOW_ENABLE_SHELL", "perhaps", r"^setting WOOW_ENABLE_SHELL: "),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "\n" not in str(info.value)
    assert re.search(expected, str(info.value)), str(info.value)


def test_bad_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "woow.toml"
    cfg.write_text("lock_tll = 3\n")
    monkeypatch.setenv("WOOW_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="unknown setting 'lock_tll'"):
        load_settings()
    monkeypatch.setenv("WOOW_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings()


def test_example_config_documents_every_setting_and_parses() -> None:
    text = (ROOT / "config" / "woow.example.toml").read_text()
    for name in Settings.model_fields:
        assert f"# {name} = " in text, f"config/woow.example.toml lacks {name}"
    # uncommenting every line that has a value gives a valid configuration
    import tomllib

    body = "\n".join(
        line[2:] for line in text.splitlines() if line.startswith("# ") and " = " in line and "unset" not in line
    )
    data = tomllib.loads("[woow]\n" + body)["woow"]
    assert Settings(**data).key_prefix == "woow:"
