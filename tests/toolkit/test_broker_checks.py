"""`doctor`'s broker checks and `diag mqtt` against a real mosquitto with TLS, client
certificates and the shipped ACL; certificates good, expired, expiring and from a rogue CA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dated_certs import CertPair, DatedCa
from support.broker import BrokerTls, MosquittoBroker
from toolkit_helpers import broker_mqtt, config_text

from edge_agent.cli.main import main

ACL = Path(__file__).parents[2] / "deploy" / "mosquitto" / "edge-agent.acl"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("pki")
    ca = DatedCa(base / "ca")
    rogue = DatedCa(base / "rogue", "rogue-ca")
    return {"ca": ca, "server": ca.issue("localhost", server=True),
            "good": ca.issue("HKG1/L1"),
            "expired": ca.issue("HKG1/L1", valid_from_days=-60, valid_until_days=-3,
                                 label="expired"),
            "soon": ca.issue("HKG1/L1", valid_until_days=5, label="soon"),
            "rogue": rogue.issue("HKG1/L1")}


@pytest.fixture
def tls_broker(tmp_path: Path, pki: dict):
    broker = MosquittoBroker(tmp_path / "broker", acl_file=ACL, allow_anonymous=False,
                             tls=BrokerTls(pki["ca"].cert, pki["server"].cert, pki["server"].key))
    broker.start()
    yield broker
    broker.close()


def _config(tmp_path: Path, broker: MosquittoBroker, ca: Path, client: CertPair) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    tls = (f'[mqtt.tls]\nca_file = "{ca}"\ncert_file = "{client.cert}"\n'
           f'key_file = "{client.key}"')
    path = tmp_path / "agent.toml"
    path.write_text(config_text(tmp_path / "state", {}, broker_mqtt(broker, tls)))
    return path


def _doctor(capsys, config: Path) -> dict[str, dict]:
    main(["doctor", "--config", str(config), "--json"])
    return {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}


def test_good_certificate_round_trip_over_tls(capsys, tmp_path, tls_broker, pki):
    config = _config(tmp_path, tls_broker, pki["ca"].cert, pki["good"])
    assert main(["diag", "mqtt", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["received"]
    assert report["tls"]["version"].startswith("TLSv1.")
    assert "CN=localhost" in report["tls"]["server_subject"].replace("commonName=", "CN=")
    assert report["topic"] == "sortline/v1/HKG1/L1/diag/edge-agent-HKG1-L1"
    assert report["connack"] == "Success" and report["puback"] == "Success"
    assert 0 < report["round_trip_ms"] < 5000

    checks = _doctor(capsys, config)
    for name in ("TLS CA certificate", "TLS client certificate", "TLS client certificate chain",
                 "TLS client key", "broker reachable", "broker credentials", "broker ACL"):
        assert checks[name]["status"] == "pass", checks[name]


def test_human_report_names_tls_and_round_trip(capsys, tmp_path, tls_broker, pki):
    config = _config(tmp_path, tls_broker, pki["ca"].cert, pki["good"])
    assert main(["diag", "mqtt", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = dict(line.split(None, 1) for line in out.splitlines() if " " in line)
    assert lines["tls"].startswith("TLSv1.")
    assert lines["round"].startswith("trip")
    assert out.strip().endswith("OK")


def test_expired_certificate_fails_before_and_at_the_broker(capsys, tmp_path, tls_broker, pki):
    config = _config(tmp_path, tls_broker, pki["ca"].cert, pki["expired"])
    checks = _doctor(capsys, config)
    client = checks["TLS client certificate"]
    assert client["status"] == "fail" and "EXPIRED" in client["detail"]
    assert "new certificate" in client["advice"]
    assert checks["broker reachable"]["status"] == "fail"

    assert main(["diag", "mqtt", "--config", str(config), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed_step"] == "tls"


def test_certificate_near_expiry_warns_but_connects(capsys, tmp_path, tls_broker, pki):
    checks = _doctor(capsys, _config(tmp_path, tls_broker, pki["ca"].cert, pki["soon"]))
    soon = checks["TLS client certificate"]
    assert soon["status"] == "warn" and "expires in 5.0 days" in soon["detail"]
    assert checks["broker ACL"]["status"] == "pass"


def test_certificate_from_another_ca_is_refused(capsys, tmp_path, tls_broker, pki):
    config = _config(tmp_path, tls_broker, pki["ca"].cert, pki["rogue"])
    checks = _doctor(capsys, config)
    assert checks["TLS client certificate chain"]["status"] == "fail"
    assert checks["broker reachable"]["status"] == "fail"
    assert main(["diag", "mqtt", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAILED at tls" in out and "-> check mqtt.tls" in out


def test_wrong_ca_file_fails_the_server_check(capsys, tmp_path, tls_broker, pki):
    rogue_ca = Path(pki["rogue"].cert).parent / "rogue-ca.crt"
    assert main(["diag", "mqtt", "--config",
                 str(_config(tmp_path, tls_broker, rogue_ca, pki["good"])), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed_step"] == "tls" and "CERTIFICATE_VERIFY_FAILED" in report["error"]


def test_acl_refusal_is_reported_with_the_reason_code(capsys, tmp_path, pki):
    # An ACL that lets this line write only its events: the diag topic is refused.
    acl = tmp_path / "strict.acl"
    acl.write_text("pattern write sortline/v1/%u/events/#\n")
    broker = MosquittoBroker(tmp_path / "broker", acl_file=acl, allow_anonymous=False,
                             tls=BrokerTls(pki["ca"].cert, pki["server"].cert, pki["server"].key))
    with broker:
        config = _config(tmp_path, broker, pki["ca"].cert, pki["good"])
        assert main(["diag", "mqtt", "--config", str(config), "--json"]) == 1
        report = json.loads(capsys.readouterr().out)
        checks = _doctor(capsys, config)
    assert report["failed_step"] in ("subscribe", "publish", "read back")
    assert "authorized" in (report["suback"] + str(report["puback"])).lower()
    assert checks["broker ACL"]["status"] == "fail"
    assert "edge-agent.acl" in checks["broker ACL"]["advice"]


def test_broker_down_and_bad_config(capsys, tmp_path, mosquitto):
    (tmp_path / "state").mkdir()
    config = tmp_path / "agent.toml"
    config.write_text(config_text(tmp_path / "state", {}, broker_mqtt(mosquitto)))
    mosquitto.stop()
    assert main(["diag", "mqtt", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "FAILED at connect" in out and "nc -zv" in out

    config.write_text("site = 'HKG1'\n")
    assert main(["diag", "mqtt", "--config", str(config)]) == 2
    assert "line: Field required" in capsys.readouterr().err


def test_wrong_password_is_refused_with_the_broker_reason(capsys, tmp_path):
    import subprocess

    users = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(users), "HKG1-L1", "right"], check=True,
                   capture_output=True, timeout=30)
    broker = MosquittoBroker(tmp_path / "broker", allow_anonymous=False,
                             extra_config=f"password_file {users}")
    secret = tmp_path / "mqtt-password"
    (tmp_path / "state").mkdir()
    config = tmp_path / "agent.toml"
    with broker:
        for password, expected in (("right", 0), ("Wr0ng-s3cret", 1)):
            secret.write_text(password + "\n")
            config.write_text(config_text(tmp_path / "state", {}, broker_mqtt(
                broker, f'username = "HKG1-L1"\npassword_file = "{secret}"')))
            assert main(["diag", "mqtt", "--config", str(config), "--json"]) == expected
            report = json.loads(capsys.readouterr().out)
        checks = _doctor(capsys, config)
    assert report["failed_step"] == "credentials"
    assert report["connack"] in ("Bad user name or password", "Not authorized")
    assert checks["broker reachable"]["status"] == "pass"
    assert checks["broker credentials"]["status"] == "fail"
    assert "password file" in checks["broker credentials"]["advice"]
    assert "Wr0ng-s3cret" not in json.dumps(checks)  # the password itself is never shown
