"""THE shared mosquitto fixtures for tests. The broker class itself lives in the package
(edge_agent.simulation.local_broker: the demo runs one too) and is re-exported here, so tests,
scripts and benches import everything from `support.broker`:

    from support.broker import MosquittoBroker, mosquitto   # the fixture: started, stopped after

    with MosquittoBroker(tmp_path) as broker:               # outside pytest
        client.connect(broker.host, broker.port)

Options: TLS (`BrokerTls`: client certificates required, the CN as the user name), an ACL
file, persistence across restarts; `stop()`/`restart()` by pid, the same port after restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.simulation.local_broker import (  # noqa: F401  (re-exported for tests)
    BrokerError,
    BrokerTls,
    MosquittoBroker,
    find_mosquitto,
    free_port,
)


def _require_mosquitto() -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is required for MQTT tests: run ./dev install")


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A plain anonymous broker on a free loopback port, stopped after the test."""
    _require_mosquitto()
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def mosquitto_persistent(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """Like `mosquitto`, but keeps sessions and queued QoS 1 messages across restart()."""
    _require_mosquitto()
    broker = MosquittoBroker(tmp_path / "broker", persistence=True)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()
