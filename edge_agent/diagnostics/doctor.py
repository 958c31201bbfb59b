"""`edge-agent doctor`'s checks, in the order a technician would fix them.

Config first (nothing else can be checked without it), then profiles, ports, broker, disk,
clock and service. Each check is independent of the ones after it, so one failure never hides
another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.diagnostics import host_checks, input_checks, port_checks
from edge_agent.diagnostics.results import CheckResult, failed, passed, warned

# The agent answers its status socket in milliseconds; it is asked which ports it holds and
# how its inputs are doing.
STATUS_TIMEOUT_S = 1.0


def run_checks(config_path: Path, service_user: str = host_checks.SERVICE_NAME,
               status_socket: Path | None = None) -> list[CheckResult]:
    config_result, config = host_checks.check_config(config_path)
    results = [config_result]
    if config is not None:
        results += host_checks.check_profiles(config)
        status = agent_status(config, status_socket)
        agent_devices = status.get("devices") if isinstance(status, dict) else None
        if not isinstance(agent_devices, dict):
            agent_devices = None
        results += port_checks.check_ports(config.devices, service_user, agent_devices)
        results += input_checks.check_inputs(config, status)
        results += broker_checks(config)
        results += agent_link_checks(status)
        results += host_checks.check_state_dir(config)
    results.append(host_checks.check_clock())
    results += host_checks.check_service()
    return results


def broker_checks(config: AgentConfig) -> list[CheckResult]:
    from edge_agent.diagnostics.mqtt_probe import probe_broker
    from edge_agent.diagnostics.tls_checks import check_tls_files

    if not config.mqtt.enabled:
        return [warned("broker", "mqtt.enabled = false: decisions stay on this machine",
                       "set mqtt.enabled = true once the broker is ready")]
    results = check_tls_files(config.mqtt.tls) if config.mqtt.tls is not None else []
    results += cleartext_password_checks(config)
    report = probe_broker(config)
    where = report.broker
    if report.failed_step in ("connect", "tls"):
        advice = ("is the broker up? is port open in the firewall? nc -zv HOST PORT"
                  if report.failed_step == "connect" else
                  "check mqtt.tls files and the broker's CA: edge-agent diag mqtt --config FILE")
        return [*results, failed("broker reachable", f"{where}: {report.error}", advice)]
    results.append(passed("broker reachable", f"{where}" + (
        f" over {report.tls['version']}" if report.tls else " (no TLS)")))
    if report.failed_step == "credentials":
        return [*results, failed("broker credentials", report.error or "refused",
                                 "check mqtt.username / password file / client certificate")]
    results.append(passed("broker credentials", f"accepted ({report.connack})"))
    if not report.ok:
        return [*results, failed("broker ACL", f"{report.failed_step}: {report.error}",
                                 "the broker's ACL must allow this line's topics "
                                 "(deploy/mosquitto/edge-agent.acl)")]
    return [*results, passed("broker ACL", f"published and read back {report.topic} in "
                                           f"{report.round_trip_ms} ms")]


def cleartext_password_checks(config: AgentConfig) -> list[CheckResult]:
    """A warning when a user name and password would cross the network without TLS."""
    from edge_agent.sync.link import cleartext_password

    mqtt = config.mqtt
    if not cleartext_password(mqtt.host, mqtt.username, mqtt.tls is not None):
        return []
    return [warned("broker password protection",
                   f"mqtt.username is set and {mqtt.host} is not this machine, but there is "
                   "no [mqtt.tls]: the password crosses the network in clear",
                   "configure [mqtt.tls] (port 8883) for this broker")]


def agent_link_checks(status: dict[str, Any] | None) -> list[CheckResult]:
    """What the running agent says about its own link, when it could not start it (a TLS
    file missing or not PEM): the line sorts, but nothing reaches central."""
    mqtt = status.get("mqtt") if isinstance(status, dict) else None
    problem = mqtt.get("config_problem") if isinstance(mqtt, dict) else None
    if not problem:
        return []
    return [failed("agent's MQTT link", f"not started: {problem}",
                   "fix the file named: the agent looks at it every 2 s and starts the link "
                   "without a restart; events wait in the outbox")]


def status_sockets(config: AgentConfig | None, explicit: Path | None) -> list[Path]:
    """Where the running agent may listen. A technician's shell lacks the service's
    $RUNTIME_DIRECTORY, so the unit's /run/edge-agent socket is tried after the config's."""
    from edge_agent.runtime.status_server import DEFAULT_STATUS_SOCKET

    if explicit is not None:
        return [explicit]
    candidates = [config.status_socket] if config is not None else []
    if config is None or config.status.socket_path is None:
        candidates.append(DEFAULT_STATUS_SOCKET)
    return list(dict.fromkeys(candidates))


def agent_status(config: AgentConfig | None, explicit: Path | None = None,
                 errors: list[str] | None = None) -> dict[str, Any] | None:
    """The running agent's status document, or None when no agent answers (the ports are then
    probed directly); each socket's error is appended to `errors` when given."""
    from edge_agent.runtime.status_server import StatusError, query_status

    for path in status_sockets(config, explicit):
        try:
            return query_status(path, timeout_s=STATUS_TIMEOUT_S)
        except (StatusError, OSError) as exc:
            if errors is not None:
                errors.append(str(exc))
    return None
