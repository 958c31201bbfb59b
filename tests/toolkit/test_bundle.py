"""`diag bundle` without a running agent: secrets redacted, notes for what is missing."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from edge_agent.cli.main import main

SECRET = "hunter2-never-in-a-bundle"


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_bundle_redacts_secrets_and_notes_what_is_missing(capsys, tmp_path):
    (tmp_path / "state").mkdir()
    password_file = tmp_path / "mqtt-password"
    password_file.write_text(SECRET + "\n")
    config = tmp_path / "agent.toml"
    config.write_text(f"""site = "HKG1"
line = "L1"
state_dir = "{tmp_path / 'state'}"

[status]
socket_path = "{tmp_path / 'state' / 'status.sock'}"

[mqtt]
host = "broker.example"
username = "HKG1-L1"
password_file = "{password_file}"

[mqtt.tls]
ca_file = "/etc/edge-agent/ca.crt"
key_file = "/etc/edge-agent/line.key"
""")
    archive = tmp_path / "bundle.tar.gz"
    assert main(["diag", "bundle", "--config", str(config), "--out", str(archive),
                 "--no-doctor"]) == 0
    out = capsys.readouterr().out
    assert "not collected: status.json" in out
    files = _members(archive)
    assert all(SECRET.encode() not in data for data in files.values())
    settings = json.loads(files["config.json"])
    assert settings["mqtt"]["password_file"] == "<redacted>"
    assert settings["mqtt"]["tls"]["key_file"] == "<redacted>"
    assert settings["mqtt"]["host"] == "broker.example"  # what is not secret stays readable
    manifest = json.loads(files["manifest.json"])
    assert "no agent answering" in manifest["not_collected"]["status.json"]
    assert json.loads(files["outbox.json"])["present"] is False
    assert set(manifest["files"]) == {"config.json", "outbox.json"}


def test_bundle_of_an_unreadable_config_keeps_the_rest(capsys, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\npassword = "x\n')  # broken TOML: never copied raw
    archive = tmp_path / "b.tar.gz"
    assert main(["diag", "bundle", "--config", str(config), "--out", str(archive)]) == 0
    files = _members(archive)
    assert b'password = "x' not in b"".join(files.values())
    manifest = json.loads(files["manifest.json"])
    assert "not valid TOML" in manifest["not_collected"]["config.json"]
    doctor = json.loads(files["doctor.json"])
    assert doctor[0]["name"] == "config" and doctor[0]["status"] == "fail"


def test_bundle_output_errors(capsys, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\nline = "L1"\n')
    assert main(["diag", "bundle", "--config", str(config), "--out", str(tmp_path / "x.zip")]) == 2
    assert ".tar.gz" in capsys.readouterr().err
    missing_dir = tmp_path / "no" / "such" / "b.tar.gz"
    assert main(["diag", "bundle", "--config", str(config), "--out", str(missing_dir),
                 "--no-doctor"]) == 2
    assert "No such file" in capsys.readouterr().err


def _minimal_config(tmp_path: Path) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    config = tmp_path / "agent.toml"
    config.write_text(f'site = "HKG1"\nline = "L1"\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[status]\nsocket_path = "{tmp_path / "state" / "status.sock"}"\n'
                      '[mqtt]\nenabled = false\n')
    return config


def test_bundle_is_private_and_never_follows_a_planted_link(capsys, tmp_path):
    import os
    import stat

    config = _minimal_config(tmp_path)
    archive = tmp_path / "bundle.tar.gz"
    assert main(["diag", "bundle", "--config", str(config), "--out", str(archive),
                 "--no-doctor"]) == 0
    assert stat.S_IMODE(os.stat(archive).st_mode) == 0o600
    # A link planted at the name the bundle will take: refused, and its target untouched.
    target = tmp_path / "victim"
    target.write_text("precious")
    planted = tmp_path / "planted.tar.gz"
    planted.symlink_to(target)
    assert main(["diag", "bundle", "--config", str(config), "--out", str(planted),
                 "--no-doctor"]) == 2
    assert target.read_text() == "precious"
    dangling = tmp_path / "dangling.tar.gz"
    dangling.symlink_to(tmp_path / "would-be-created")
    assert main(["diag", "bundle", "--config", str(config), "--out", str(dangling),
                 "--no-doctor"]) == 2
    assert not (tmp_path / "would-be-created").exists()
    # An existing file is not overwritten either.
    assert main(["diag", "bundle", "--config", str(config), "--out", str(archive),
                 "--no-doctor"]) == 2
    assert "already exists" in capsys.readouterr().err
