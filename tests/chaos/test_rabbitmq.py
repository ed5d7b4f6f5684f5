"""Scenario 1b: the worker kill -9 of scenario 1 with RabbitMQ as the broker (beat and locks on the
scenario's own Redis, the broker a vhost of its own on the machine's RabbitMQ).

RabbitMQ gives a dead consumer's unacknowledged message back as soon as its connection drops
(there is no visibility timeout): the redelivery usually arrives while the killed run's lock is
still alive, so the worker must defer it rather than drop it as a duplicate.

Full size only (``make chaos``): in ``make test`` the same fault on RabbitMQ is covered, smaller, by
tests/test_rabbitmq.py::test_worker_kill9_mid_run_rabbitmq_redelivers, and scenario 1 runs there
reduced on the Redis transport.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chaos import test_worker_kill as scenario1
from tests.chaos.harness import ChaosEnv, Size
from tests.support.rabbitmq import amqp_vhost


@pytest.fixture
def amqp_env(chaos_env: ChaosEnv) -> Iterator[ChaosEnv]:
    with amqp_vhost() as url:
        chaos_env.settings = chaos_env.make_settings(broker_url=url)
        yield chaos_env
        chaos_env.close()  # every process off the vhost before it is deleted


@pytest.mark.timeout(400)
@pytest.mark.parametrize("size", [p for p in scenario1.SIZES if p.id == "full"])
def test_worker_kill9_mid_run_on_rabbitmq(amqp_env: ChaosEnv, size: Size) -> None:
    scenario1.test_worker_kill9_mid_run(amqp_env, size, scenario="1b worker kill -9 (RabbitMQ)")
