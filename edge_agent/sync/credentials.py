"""The broker password: read from a file or a systemd credential, never from config or argv.

Under systemd, `LoadCredential=mqtt-password:/etc/edge-agent/mqtt-password` puts the secret in
$CREDENTIALS_DIRECTORY/mqtt-password, readable only by the service. Errors name the file and
what is wrong with it, never its content.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.config import MqttConfig
from edge_agent.sync.errors import CredentialError

# A password longer than this is almost certainly the wrong file (a key, a log...).
MAX_PASSWORD_BYTES = 4096


def password_path(mqtt: MqttConfig) -> Path | None:
    if mqtt.password_credential:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise CredentialError(
                f"mqtt.password_credential is {mqtt.password_credential!r} but "
                "$CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit?)"
            )
        return Path(directory) / mqtt.password_credential
    return mqtt.password_file


def read_password(mqtt: MqttConfig) -> str | None:
    """The password with its trailing newline removed, or None when none is configured."""
    path = password_path(mqtt)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CredentialError(f"password file {path}: not found") from None
    except PermissionError:
        raise CredentialError(f"password file {path}: permission denied") from None
    except IsADirectoryError:
        raise CredentialError(f"password file {path}: is a directory") from None
    if len(data) > MAX_PASSWORD_BYTES:
        raise CredentialError(f"password file {path}: larger than {MAX_PASSWORD_BYTES} bytes")
    try:
        password = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise CredentialError(f"password file {path}: not UTF-8 text") from None
    if not password:
        raise CredentialError(f"password file {path}: empty")
    return password
