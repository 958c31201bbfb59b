"""The broker password: from a file or a systemd credential; errors never show the secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from sync_helpers import agent_config

from edge_agent.config import MqttConfig
from edge_agent.sync.credentials import read_password
from edge_agent.sync.errors import CredentialError
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox

SECRET = "s3cret-Pa55"


def test_password_file_and_credential(tmp_path: Path, monkeypatch):
    (tmp_path / "pw").write_text(SECRET + "\n")
    assert read_password(MqttConfig(password_file=tmp_path / "pw")) == SECRET
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert read_password(MqttConfig(password_credential="pw")) == SECRET
    assert read_password(MqttConfig()) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "not found"), (b"", "empty"), (b"\xff\xfe" + SECRET.encode(), "not UTF-8"),
     (b"x" * 5000, "larger than")],
)
def test_bad_password_files_are_named_without_their_content(tmp_path, content, problem):
    path = tmp_path / "pw"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CredentialError) as caught:
        read_password(MqttConfig(password_file=path))
    assert problem in str(caught.value) and str(path) in str(caught.value)
    assert SECRET not in str(caught.value)


def test_credential_without_credentials_directory(monkeypatch):
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(CredentialError, match="CREDENTIALS_DIRECTORY"):
        read_password(MqttConfig(password_credential="mqtt-password"))


def test_the_password_never_reaches_logs_or_stats(tmp_path: Path):
    (tmp_path / "pw").write_text(SECRET)
    config = agent_config(tmp_path / "state", 1, username="agent",
                          password_file=str(tmp_path / "pw"))
    outbox = Outbox.open(config.state_dir, config.outbox)
    with capture_logs() as logs:
        link = MqttLink(config, outbox)
        link.start()  # port 1: the connection fails, which is logged
        link.stop(timeout_s=1)
    outbox.close()
    assert logs and SECRET not in repr(logs) and SECRET not in repr(link.stats())
