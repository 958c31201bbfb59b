"""The paho client, made one way for the agent's link and for `diag mqtt`'s probe.

Both connect as the agent (host, port, protocol, user and password file, TLS files), so the
probe's verdict holds for the link: the client, its credentials and its TLS are set up here
once. The TLS files are checked before paho sees them (tls_files.py: a bad file is named, never
a raw SSLError), and the peer is always verified; `insecure_skip_hostname_check` only skips the
name match, for brokers reached by an address their certificate does not carry.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from edge_agent.config import MqttConfig
from edge_agent.sync.credentials import read_password
from edge_agent.sync.errors import CredentialError
from edge_agent.sync.tls_files import tls_problems

# What secure() raises for a missing or bad credential or TLS file: the caller reports it (the
# link as its config problem, the probe as the failed step), never lets it stop the line.
SETUP_ERRORS = (CredentialError, OSError, ssl.SSLError, ValueError)


def new_client(config: MqttConfig, client_id: str) -> mqtt.Client:
    v5 = config.protocol == "5"
    return mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # Under 3.1.1 a clean session; under v5 clean_start is chosen in connect_async.
        clean_session=None if v5 else True,
    )


def secure(client: mqtt.Client, config: MqttConfig) -> None:
    """Credentials and TLS; raises one of SETUP_ERRORS if a file is missing or bad."""
    if config.username:
        client.username_pw_set(config.username, read_password(config))
    if config.tls is None:
        return
    problems = tls_problems(config.tls)
    if problems:
        raise ValueError("; ".join(problems))
    client.tls_set(
        ca_certs=str(config.tls.ca_file),
        certfile=str(config.tls.cert_file) if config.tls.cert_file else None,
        keyfile=str(config.tls.key_file) if config.tls.key_file else None,
        cert_reqs=ssl.CERT_REQUIRED,
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )
    client.tls_insecure_set(config.tls.insecure_skip_hostname_check)
