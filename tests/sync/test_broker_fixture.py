"""The shared broker fixture itself: starts, accepts, restarts on the same port, stops by pid."""

import socket

from support.broker import MosquittoBroker


def _accepts(broker: MosquittoBroker) -> bool:
    try:
        with socket.create_connection((broker.host, broker.port), timeout=1):
            return True
    except OSError:
        return False


def test_broker_starts_restarts_on_same_port_and_stops(mosquitto: MosquittoBroker):
    assert _accepts(mosquitto)
    port, pid = mosquitto.port, mosquitto.pid
    mosquitto.restart()
    assert mosquitto.port == port and mosquitto.pid != pid
    assert _accepts(mosquitto)
    mosquitto.stop()
    assert mosquitto.pid is None and not _accepts(mosquitto)
