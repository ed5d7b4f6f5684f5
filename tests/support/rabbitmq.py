"""RabbitMQ for tests: a vhost of this test's own on the machine's broker, deleted afterwards.

    with amqp_vhost() as url:       # amqp://guest:guest@127.0.0.1:5672/woow_test_1a2b3c4d
        settings = load_settings(..., broker_url=url)

The broker comes from ``WOOW_TEST_AMQP_URL`` (default ``amqp://guest:guest@127.0.0.1:5672//``).
When the variable is set (``.ci/run`` sets it after making sure RabbitMQ runs), a broker that does
not answer fails the test; when it is not set and nothing answers on the default address, the test
is skipped with the reason (so ``make test`` runs the RabbitMQ tests wherever RabbitMQ answers).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pytest

AMQP_ENV = "WOOW_TEST_AMQP_URL"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2):
            return True
    except OSError:
        return False


def _ctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def amqp_vhost() -> Iterator[str]:
    """The URL of a fresh vhost (via ``rabbitmqctl``), or of the configured one when it is not available."""
    configured = os.environ.get(AMQP_ENV)
    url = configured or DEFAULT_AMQP_URL
    if not _answers(url):
        if configured:
            pytest.fail(f"RabbitMQ at {AMQP_ENV}={url} does not answer", pytrace=False)
        pytest.skip(f"RabbitMQ does not answer at {url} (set {AMQP_ENV} to require it)")
    parts = urlsplit(url)
    if shutil.which("rabbitmqctl") is None:
        yield url  # a remote broker: the tests still use queues of their own
        return
    vhost = f"woow_test_{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, unquote(parts.username or "guest"), ".*", ".*", ".*")
        yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    finally:
        _ctl("delete_vhost", vhost)
