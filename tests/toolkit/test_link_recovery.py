"""A link file put right while the agent runs is taken without a restart, on the real agent.

A missing password file leaves the line sorting offline, with the file and the reason in the
status (and an alarm that reaches central once the link works); the link starts by itself once
the file appears. A client certificate the broker refuses (expired), renewed on disk while the
agent runs, is used from the next reconnect on.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from dated_certs import DatedCa
from line_harness import AgentProcess, wait_for
from support.broker import MosquittoBroker

from edge_agent.config import load_config
from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.local_broker import BrokerTls
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.outbox_store import read_only_stats as outbox_stats

PARCELS = 12
# The link looks at a file that kept it from starting every 2 s (sync.link.CONFIG_RETRY_S);
# reconnects come at most reconnect_max_s apart (1 s here).
RECOVERY_S = 20.0


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock")


def _sort_some(sim: LineSimulation) -> None:
    driver = threading.Thread(target=sim.drive)
    driver.start()
    driver.join()
    assert sim.wait_for_lane_commands() == PARCELS  # the line sorted every parcel


def _replace(path: Path, data: bytes) -> None:
    """As an administrator renews a file: a new file renamed over the old one."""
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


class Subscriber:
    """Central's view of the line's events, with a user name and password."""

    def __init__(self, broker: MosquittoBroker, prefix: str, username: str, password: str):
        self.events: list[dict] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recovery-central")
        self._client.username_pw_set(username, password)
        self._client.on_message = lambda c, u, m: self.events.append(json.loads(m.payload))
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}events/#", qos=1)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def alarms(self, name: str) -> list[dict]:
        return [e for e in self.events if e.get("alarm") == name]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_a_missing_password_file_leaves_the_line_sorting_until_it_appears(tmp_path):
    users = tmp_path / "passwords"
    for user, password in (("HKG1-L1", "right"), ("central", "central-secret")):
        subprocess.run(["mosquitto_passwd", *([] if users.exists() else ["-c"]), "-b",
                        str(users), user, password], check=True, capture_output=True, timeout=30)
    broker = MosquittoBroker(tmp_path / "broker", allow_anonymous=False,
                             extra_config=f"password_file {users}").start()
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=29), rate=50,
                         broker=f"{broker.host}:{broker.port}")
    sim.prepare()
    secret = tmp_path / "mqtt-password"  # not there yet
    sim.config_path.write_text(sim.config_path.read_text().replace(
        "[mqtt]\n", f'[mqtt]\nusername = "HKG1-L1"\npassword_file = "{secret}"\n'))
    central = Subscriber(broker, load_config(sim.config_path).topic_prefix, "central",
                         "central-secret")
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        problem = _status(sim)["mqtt"]["config_problem"]
        assert problem == f"password file {secret}: not found"
        _sort_some(sim)
        wait_for(lambda: outbox_stats(sim.state_dir)["pending_by_kind"].get("parcel", 0)
                 >= PARCELS, what="the parcels' events kept in the outbox")
        assert not central.events
        _replace(secret, b"right\n")
        wait_for(lambda: _status(sim)["mqtt"]["connected"], timeout_s=RECOVERY_S,
                 what="the link started once the password file appeared")
        assert _status(sim)["mqtt"]["config_problem"] is None
        error = wait_for(lambda: central.alarms("mqtt_config_error"),
                         what="mqtt_config_error at central")
        assert error[0]["details"]["problem"] == problem
        wait_for(lambda: central.alarms("mqtt_config_fixed"), what="mqtt_config_fixed")
        wait_for(lambda: len([e for e in central.events if "parcel_id" in e
                              and "alarm" not in e]) >= PARCELS,
                 what="the offline parcels' events at central")
        assert agent.process.poll() is None
    finally:
        agent.ensure_stopped()
        central.close()
        sim.close()
        broker.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    ca = DatedCa(tmp_path_factory.mktemp("pki") / "ca")
    return {"ca": ca, "server": ca.issue("localhost", server=True),
            "expired": ca.issue("SIM/L1", valid_from_days=-30, valid_until_days=-1,
                                label="expired"),
            "renewed": ca.issue("SIM/L1", label="renewed")}


def test_a_client_certificate_renewed_while_the_agent_runs_is_used_at_the_next_reconnect(
        tmp_path, pki):
    broker = MosquittoBroker(tmp_path / "broker", tls=BrokerTls(
        pki["ca"].cert, pki["server"].cert, pki["server"].key)).start()
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=31), rate=50,
                         broker=f"{broker.host}:{broker.port}")
    sim.prepare()
    cert, key = tmp_path / "agent.crt", tmp_path / "agent.key"
    cert.write_bytes(pki["expired"].cert.read_bytes())
    key.write_bytes(pki["expired"].key.read_bytes())
    sim.config_path.write_text(sim.config_path.read_text().replace(
        "[mqtt]\n", "[mqtt]\nreconnect_min_s = 0.2\nreconnect_max_s = 1.0\n")
        + f'\n[mqtt.tls]\nca_file = "{pki["ca"].cert}"\ncert_file = "{cert}"\n'
          f'key_file = "{key}"\n')
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        # The files are good PEM: the link runs, and the broker refuses the expired certificate.
        wait_for(lambda: _status(sim)["mqtt"]["last_error"], what="a refused connection")
        mqtt_status = _status(sim)["mqtt"]
        assert not mqtt_status["connected"] and mqtt_status["config_problem"] is None
        _sort_some(sim)
        _replace(key, pki["renewed"].key.read_bytes())
        _replace(cert, pki["renewed"].cert.read_bytes())
        wait_for(lambda: _status(sim)["mqtt"]["connected"], timeout_s=RECOVERY_S,
                 what="the renewed certificate used at a reconnect")
        wait_for(lambda: outbox_stats(sim.state_dir)["pending_by_kind"].get("parcel", 0) == 0,
                 what="the offline parcels' events delivered")
        # A renewal gone wrong (a certificate file that is not PEM) is not taken: at the next
        # reconnect (the broker restarted) the files loaded last are used, and it connects.
        _replace(cert, b"not a certificate\n")
        broker.stop()
        wait_for(lambda: not _status(sim)["mqtt"]["connected"], what="the link down")
        broker.start()
        wait_for(lambda: _status(sim)["mqtt"]["connected"], timeout_s=RECOVERY_S,
                 what="reconnected with the last good certificate")
        assert agent.process.poll() is None
    finally:
        agent.ensure_stopped()
        sim.close()
        broker.close()
