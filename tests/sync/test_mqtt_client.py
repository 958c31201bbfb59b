"""One paho client set-up for the agent's link and `diag mqtt`: same protocol, same credentials,
same TLS checks, so the probe's verdict holds for the link."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from edge_agent.config import parse_config
from edge_agent.diagnostics.mqtt_probe import probe_broker
from edge_agent.sync.link import MqttLink
from edge_agent.sync.mqtt_client import new_client, secure
from edge_agent.sync.outbox import Outbox


def _config(tmp_path, **mqtt_settings):
    return parse_config({
        "site": "HKG1", "line": "L1", "state_dir": str(tmp_path / "state"),
        # Port 9 (discard) on loopback: nothing here may reach a broker.
        "mqtt": {"enabled": True, "host": "127.0.0.1", "port": 9, **mqtt_settings},
    })


@pytest.mark.parametrize(("protocol", "paho_protocol"), [("5", mqtt.MQTTv5),
                                                        ("3.1.1", mqtt.MQTTv311)])
def test_the_protocol_and_client_id_are_the_configs(tmp_path, protocol, paho_protocol):
    config = _config(tmp_path, protocol=protocol)
    client = new_client(config.mqtt, "HKG1-L1")
    assert client.protocol == paho_protocol
    assert client._client_id == b"HKG1-L1"


def test_a_bad_tls_file_is_the_same_problem_for_the_link_and_the_probe(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("this is not a certificate\n")
    config = _config(tmp_path, tls={"ca_file": str(not_pem)})
    with pytest.raises(ValueError, match="not a PEM certificate") as raised:
        secure(new_client(config.mqtt, "HKG1-L1"), config.mqtt)

    report = probe_broker(config, timeout_s=1.0)
    assert (report.failed_step, report.error) == ("tls", str(raised.value))
    assert not report.connected

    (tmp_path / "state").mkdir()
    outbox = Outbox.open(tmp_path / "state", config.outbox)
    try:
        link = MqttLink(config, outbox)  # refuses to start the link, never the agent
        assert link.config_problem == str(raised.value)
    finally:
        outbox.close()

