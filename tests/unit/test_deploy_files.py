"""docker-compose.yml, Procfile and Dockerfile must match the CLI (no Docker engine runs here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.support.servers import free_port
from woow_scheduler.cli import cli
from woow_scheduler.redis_store import SentinelURL
from woow_scheduler.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]


def _cli_accepts(argv: list[str]) -> None:
    """The command exists: `woow <argv...> --help` resolves through click."""
    words = [w for w in argv if not w.startswith("-")]
    cmd: object = cli
    path = []
    for w in words:
        sub = getattr(cmd, "commands", {}).get(w)
        if sub is None:
            break
        cmd, path = sub, [*path, w]
    assert path, f"{argv} names no woow command"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output


WOOW_ROLES = {"simple": ("beat", "worker", "flower", "api"), "ha": ("beat-ha", "worker-ha", "flower-ha", "api-ha")}
HEALTH = {"beat": ["beat", "--local"], "worker": ["workers", "--local"], "api": ["api"]}


def _interpolate(text: str) -> str:
    """What compose makes of ``${NAME:?message}`` given NAME: here a stand-in value per name."""
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: f"{m.group(1).lower()}-value", text)


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc["services"]


def _check_woow_service(name: str, svc: dict[str, Any]) -> None:
    assert svc["command"][0] == "woow", name
    _cli_accepts(svc["command"][1:])
    env = svc["environment"]
    for key in env:
        assert key.startswith("WOOW_")
        assert key[5:].lower() in Settings.model_fields, f"{name}: {key} is not a setting"
    load_settings(**{k[5:].lower(): _interpolate(v) for k, v in env.items()})  # every value is valid
    assert env["WOOW_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["WOOW_DATABASE_URL"]


def _check_health(name: str, svc: dict[str, Any]) -> None:
    """The role's health check is `woow status --check <role> [--local]`, and the CLI takes it."""
    role = name.removesuffix("-ha")
    test = svc["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1:4] == ["woow", "status", "--check"], (name, test)
    assert test[4:4 + len(HEALTH[role])] == HEALTH[role], (name, test)
    result = CliRunner().invoke(cli, [*test[2:], "--help"])
    assert result.exit_code == 0, result.output


def test_compose_simple_profile_commands_environment_and_health_checks() -> None:
    services = _compose()
    assert {"postgres", "redis", "migrate", *WOOW_ROLES["simple"]} <= set(services)
    assert services["migrate"]["command"] == ["woow", "db", "upgrade"]
    assert services["beat"]["deploy"]["replicas"] >= 2  # HA of beat: one active, one standby
    _check_woow_service("migrate", services["migrate"])
    for name in WOOW_ROLES["simple"]:
        svc = services[name]
        assert svc["profiles"] == ["simple"]
        _check_woow_service(name, svc)
        assert "@redis:" in svc["environment"]["WOOW_REDIS_URL"]
        # credentials come from the environment, never from the file
        assert "${REDIS_PASSWORD:?" in svc["environment"]["WOOW_REDIS_URL"]
        assert "${POSTGRES_PASSWORD:?" in svc["environment"]["WOOW_DATABASE_URL"]
        deps = svc["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        if name != "flower":
            _check_health(name, svc)
    assert services["flower"]["command"][2:4] == ["--port", "5555"]  # the README's form
    assert services["redis"]["profiles"] == ["simple"]
    assert "--requirepass" in services["redis"]["command"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    flower = services["flower"]
    assert all(p.startswith("127.0.0.1:") for p in flower["ports"])
    assert any(a.startswith("--basic-auth=${FLOWER_BASIC_AUTH:?") for a in flower["command"])
    assert "COMPOSE_PROFILES=simple" in (ROOT / ".env").read_text().splitlines()


def test_compose_ha_profile_runs_everything_on_sentinel() -> None:
    services = _compose()
    sentinels = [n for n in services if n.startswith("sentinel-")]
    assert len(sentinels) == 3 and {"redis-master", "redis-replica"} <= set(services)
    assert services["beat-ha"]["deploy"]["replicas"] >= 2 and services["worker-ha"]["deploy"]["replicas"] >= 2
    # an init as PID 1 reaps the backup lock renewer of a pool child killed by -9 (Celery does not)
    assert services["worker"]["init"] is True and services["worker-ha"]["init"] is True
    master_cmd = services["redis-master"]["command"]
    password = master_cmd[master_cmd.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")  # credentials come from the environment
    assert master_cmd[master_cmd.index("--masterauth") + 1] == password
    replica_cmd = services["redis-replica"]["command"]
    assert replica_cmd[replica_cmd.index("--replicaof") + 1:] == ["redis-master", "6379"]
    assert replica_cmd[replica_cmd.index("--masterauth") + 1] == password
    for name in WOOW_ROLES["ha"]:
        svc = services[name]
        assert svc["profiles"] == ["ha"]
        _check_woow_service(name, svc)
        if name != "flower-ha":
            _check_health(name, svc)
        url = SentinelURL.parse(_interpolate(svc["environment"]["WOOW_REDIS_URL"]))
        assert sorted(h for h, _ in url.sentinels) == sorted(sentinels) and {p for _, p in url.sentinels} == {26379}
        assert url.password == _interpolate(password)
        assert "WOOW_BROKER_URL" not in svc["environment"]  # the broker follows the Redis URL, Sentinel included
        for s in sentinels:
            assert svc["depends_on"][s]["condition"] == "service_healthy"
        for s in sentinels:  # each sentinel monitors that master under that name, with those passwords
            sentinel = services[s]
            conf = " ".join(sentinel["command"])
            env = sentinel["environment"]
            assert f"sentinel monitor {url.master} redis-master 6379 2" in conf
            assert f'"sentinel auth-pass {url.master} $$REDIS_PASSWORD"' in conf and env["REDIS_PASSWORD"] == password
            assert '"requirepass $$SENTINEL_PASSWORD"' in conf
            assert _interpolate(env["SENTINEL_PASSWORD"]) == url.sentinel_password
            assert sentinel["profiles"] == ["ha"]
    flower = services["flower-ha"]
    assert all(p.startswith("127.0.0.1:") for p in flower["ports"])
    assert any(a.startswith("--basic-auth=${FLOWER_BASIC_AUTH:?") for a in flower["command"])


def test_procfile_runs_the_documented_commands() -> None:
    entries = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert {"beat", "worker", "flower", "web"} <= set(entries)
    assert shlex.split(entries["web"])[:2] == ["woow", "api"]
    beat = shlex.split(entries["beat"])
    assert beat[:4] == ["celery", "-A", "woow_scheduler.worker", "beat"]
    assert beat[beat.index("-S") + 1] == "woow_scheduler.beat:WoowScheduler"
    worker = shlex.split(entries["worker"])
    assert worker[:4] == ["celery", "-A", "woow_scheduler.worker", "worker"]
    assert shlex.split(entries["flower"])[:2] == ["woow", "flower"]
    from woow_scheduler.beat import WoowScheduler  # the class the Procfile names exists

    assert WoowScheduler.__name__ == "WoowScheduler"


def test_compose_sentinel_command_writes_a_config_redis_accepts(tmp_path: Path) -> None:
    """Run the sentinels' shell command as the container would (compose turns $$ into $), up to the
    exec, and start a real sentinel on the config it wrote."""
    import subprocess
    import time

    services = _compose()
    script = services["sentinel-1"]["command"][0].replace("$$", "$")
    write, _, run = script.partition(" && ")
    conf = tmp_path / "sentinel.conf"
    env = {"PATH": "/usr/bin:/bin", "REDIS_PASSWORD": "r-pass", "SENTINEL_PASSWORD": "s-pass"}
    subprocess.run(["sh", "-c", write.replace("/tmp/sentinel.conf", str(conf))], env=env, check=True, timeout=30)
    lines = conf.read_text().splitlines()
    assert "requirepass s-pass" in lines and "sentinel auth-pass woow r-pass" in lines
    assert run.startswith("exec redis-server /tmp/sentinel.conf --sentinel")
    port = free_port()
    text = conf.read_text().replace("port 26379", f"port {port}").replace("redis-master", "127.0.0.1")
    conf.write_text(text + "bind 127.0.0.1\n")
    proc = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            out = subprocess.run(["redis-cli", "-p", str(port), "--no-auth-warning", "-a", "s-pass", "sentinel",
                                  "get-master-addr-by-name", "woow"], capture_output=True, text=True, timeout=5)
            if out.stdout.split() == ["127.0.0.1", "6379"]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the sentinel did not take its config: {proc.poll()}")
    finally:
        proc.kill()
        proc.wait(timeout=10)
