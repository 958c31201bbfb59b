"""THE shared mosquitto fixtures for tests. The broker class itself lives in the package
(edge_agent.simulation.local_broker: the demo runs one too) and is re-exported here, so tests,
scripts and benches import it from `support.broker`:

    def test_x(mosquitto): ...          # the fixture (registered in tests/conftest.py)

    with MosquittoBroker(tmp_path) as broker:               # outside pytest
        client.connect(broker.host, broker.port)

Options: TLS (`BrokerTls`: client certificates required, the CN as the user name), an ACL
file, persistence across restarts; `stop()`/`restart()` by pid, the same port after restart.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.simulation.local_broker import (  # noqa: F401  (re-exported for tests)
    BrokerError,
    BrokerTls,
    MosquittoBroker,
    find_mosquitto,
    free_port,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `mqtt` every test that needs the mosquitto binary: the test, or a fixture it uses
    (the ones above included), starts a MosquittoBroker. `-m "not mqtt"` leaves them out."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        functions = [getattr(item, "function", None)]
        if info is not None:
            functions += [d.func for defs in info.name2fixturedefs.values() for d in defs]
        if any(_starts_a_broker(function) for function in functions if function is not None):
            item.add_marker(pytest.mark.mqtt)


# What a test or fixture that starts a broker calls (the fault suite's fault_line starts one).
BROKER_STARTERS = ("MosquittoBroker(", "fault_line(")


@functools.cache
def _starts_a_broker(function: Callable[..., object]) -> bool:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):  # a builtin or generated function: not ours
        return False
    return any(starter in source for starter in BROKER_STARTERS)


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
