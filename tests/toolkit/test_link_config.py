"""A broken link configuration never stops the line, and the tools say what is wrong with it:
TLS files missing or not PEM (`run`, `config check`, `doctor`, `diag status`), a key others
can read, a password that would cross the network in clear."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from dated_certs import DatedCa
from line_harness import AgentProcess, wait_for
from structlog.testing import capture_logs
from toolkit_helpers import config_text

from edge_agent.cli.main import main
from edge_agent.config import load_config, parse_config
from edge_agent.diagnostics.doctor import cleartext_password_checks
from edge_agent.diagnostics.tls_checks import check_tls_files
from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox
from edge_agent.sync.outbox_store import read_only_stats

PARCELS = 12


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    ca = DatedCa(tmp_path_factory.mktemp("pki") / "ca")
    return {"ca": ca, "client": ca.issue("HKG1/L1")}


def _tls_config(tmp_path: Path, ca: Path, cert: Path, key: Path) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    tls = f'\n[mqtt.tls]\nca_file = "{ca}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
    path = tmp_path / "agent.toml"
    path.write_text(config_text(tmp_path / "state", {}, "enabled = true") + tls)
    return path


def _config_check(capsys, path: Path) -> tuple[int, list[str]]:
    code = main(["config", "check", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)["problems"]


def test_config_check_looks_at_the_tls_files(capsys, tmp_path, pki):
    good = _tls_config(tmp_path, pki["ca"].cert, pki["client"].cert, pki["client"].key)
    assert _config_check(capsys, good) == (0, [])
    not_pem = tmp_path / "not-a-cert.pem"
    not_pem.write_text("this is a note, not a certificate\n")
    bad = _tls_config(tmp_path, tmp_path / "missing-ca.pem", not_pem, pki["client"].cert)
    code, problems = _config_check(capsys, bad)
    assert code == 2
    assert any(p.startswith("mqtt.tls.ca_file") and "not found" in p for p in problems)
    assert any(p.startswith("mqtt.tls.cert_file") and "not a PEM certificate" in p
               for p in problems)
    assert any(p.startswith("mqtt.tls.key_file") and "not a PEM private key" in p
               for p in problems)  # a certificate where the key should be


def test_a_key_others_can_read_is_a_doctor_warning(tmp_path, pki):
    config = load_config(_tls_config(tmp_path, pki["ca"].cert, pki["client"].cert,
                                     pki["client"].key))
    assert config.mqtt.tls is not None
    key = pki["client"].key
    key.chmod(0o400)
    results = {r.name: r for r in check_tls_files(config.mqtt.tls)}
    assert results["TLS client key"].status == "pass"
    key.chmod(0o640)  # the old install guide's root:edge-agent 0640
    try:
        results = {r.name: r for r in check_tls_files(config.mqtt.tls)}
        assert results["TLS client key"].status == "warn"
        assert "chmod 0400" in results["TLS client key"].advice
    finally:
        key.chmod(0o600)


def _mqtt_config(tmp_path: Path, **mqtt) -> object:
    return parse_config({"site": "HKG1", "line": "L1", "state_dir": str(tmp_path / "state"),
                         "mqtt": mqtt})


def test_a_password_without_tls_to_another_host_is_warned_by_doctor_and_run(tmp_path,
                                                                            monkeypatch):
    password = tmp_path / "password"
    password.write_text("not-in-any-output\n")
    remote = _mqtt_config(tmp_path, host="broker.example.internal", username="line-1",
                          password_file=str(password))
    warnings = cleartext_password_checks(remote)
    assert [w.status for w in warnings] == ["warn"]
    for quiet in (_mqtt_config(tmp_path, host="127.0.0.1", username="line-1",
                               password_file=str(password)),
                  _mqtt_config(tmp_path, host="broker.example.internal")):
        assert cleartext_password_checks(quiet) == []
    # The run log says it too; the connection itself is not attempted here (no network).
    (tmp_path / "state").mkdir()
    outbox = Outbox.open(tmp_path / "state", remote.outbox)
    link = MqttLink(remote, outbox)
    monkeypatch.setattr(link._client, "connect_async", lambda *a, **k: None)
    monkeypatch.setattr(link._client, "loop_start", lambda: None)
    monkeypatch.setattr(link._publisher, "start", lambda: None)
    try:
        with capture_logs() as logs:
            link.start()
        assert [e["host"] for e in logs if e["event"] == "mqtt.password_without_tls"] == [
            "broker.example.internal"]
    finally:
        outbox.close()


@pytest.mark.parametrize("fault", ["missing", "not_pem"])
def test_a_broken_tls_file_leaves_the_line_sorting_and_every_tool_says_why(
        capsys, tmp_path, mosquitto, fault):
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=83), rate=50,
                         broker=f"{mosquitto.host}:{mosquitto.port}")
    sim.prepare()
    ca = tmp_path / "ca.pem"
    if fault == "not_pem":
        ca.write_bytes(b"\x00\x01 garbage, not a certificate")
    sim.config_path.write_text(sim.config_path.read_text() + f'\n[mqtt.tls]\nca_file = "{ca}"\n')
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        driver = threading.Thread(target=sim.drive)
        driver.start()
        driver.join()
        assert sim.wait_for_lane_commands() == PARCELS  # the line sorted every parcel
        status = query_status(sim.state_dir / "status.sock")
        problem = status["mqtt"]["config_problem"]
        assert "mqtt.tls.ca_file" in problem and str(ca) in problem
        kept = wait_for(lambda: (lambda s: s if s["pending_by_kind"].get("parcel", 0) >= PARCELS
                                 else None)(read_only_stats(sim.state_dir)),
                        what="the parcels' events kept in the outbox")
        assert kept["pending_by_kind"].get("alarm", 0) >= 1  # mqtt_config_error
        assert main(["diag", "status", "--socket", str(sim.state_dir / "status.sock"),
                     "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["mqtt"]["config_problem"] == problem
        main(["doctor", "--config", str(sim.config_path), "--json"])
        checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
        assert checks["agent's MQTT link"]["status"] == "fail"
        assert str(ca) in checks["agent's MQTT link"]["detail"]
        assert agent.process.poll() is None
    finally:
        agent.ensure_stopped()
        sim.close()
