"""Building the agent's parts from its configuration, in the order start-up needs them.

The state directory's lock comes first: a second agent with the same config stops there, before
it reads or writes anything under the directory (the running agent's journal, outbox, lanes).
Then the store (manifest, outbox) and the rules: a bad rules file or an unwritable state
directory stops start-up with a clear error before any device is touched. Devices that are
missing at start are not an error: the hub keeps retrying them, and the agent reports them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import structlog

from edge_agent.config import AgentConfig
from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.line_devices import line_problems
from edge_agent.devices.ports import port_for_device
from edge_agent.devices.profiles import load_profile
from edge_agent.errors import ConfigError
from edge_agent.logs import logging_settings
from edge_agent.runtime import rules_store
from edge_agent.runtime.command_prep import AgentCommandPrep
from edge_agent.runtime.command_worker import WorkerProcess
from edge_agent.runtime.command_worker_main import command_rules
from edge_agent.runtime.systemd import SystemdNotifier, Watchdog
from edge_agent.sorting.hold_store import HoldStore
from edge_agent.sorting.manifest import Manifest
from edge_agent.sorting.rules import RuleSet
from edge_agent.state_lock import StateDirLock
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import CommandInbox
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox

# The loops whose liveness feeds the systemd watchdog. The serial reading happens inside the
# decision loop (one thread), so "decision_loop" covers the serial readers too.
WATCHED_COMPONENTS = ("decision_loop", "mqtt")
# A component silent for longer than this starves the watchdog (systemd then restarts us).
WATCHDOG_STALE_S = 5.0


@dataclass
class Components:
    hub: DeviceHub
    roles: dict[str, str]  # device name -> scanner | scale | dws | sorter
    device_for_role: dict[str, str]
    rules: RuleSet
    rules_source: str
    manifest: Manifest
    outbox: Outbox
    link: MqttLink | None
    inbox: CommandInbox | None
    notifier: SystemdNotifier
    watchdog: Watchdog
    state_lock: StateDirLock | None = None  # released by Agent.close, last
    # In-process preparation (tests that build an Agent by hand); the agent uses the worker.
    command_prep: AgentCommandPrep | None = None
    command_worker: WorkerProcess | None = None
    holds: HoldStore | None = None  # central's holds, loaded into the loop's index at start
    pid: int = field(default_factory=os.getpid)


def build_components(config: AgentConfig) -> Components:
    """Open the store, load the rules and profiles, and open the ports."""
    try:
        config.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(str(config.state_dir), [f"state_dir: cannot create it ({exc})"]) from None
    state_lock = StateDirLock.acquire(config.state_dir, "edge-agent run")
    try:
        return _build_locked(config, state_lock)
    except BaseException:
        state_lock.release()
        raise


def _build_locked(config: AgentConfig, state_lock: StateDirLock) -> Components:
    rules, rules_source = rules_store.initial_rules(config)
    profiles = {name: load_profile(device.profile) for name, device in config.devices.items()}
    roles = {name: profile.kind for name, profile in profiles.items()}
    sorter_driven = any(p.decode.protocol == "sorter-host" for p in profiles.values())
    if problems := line_problems(roles, sorter_driven):
        raise ConfigError("config", problems)
    device_for_role = {role: name for name, role in roles.items()}

    manifest = Manifest.open(config.state_dir)
    holds = HoldStore.open(config.state_dir)
    outbox = Outbox.open(config.state_dir, config.outbox)
    inbox: CommandInbox | None = None
    link: MqttLink | None = None
    command_worker: WorkerProcess | None = None
    command_prep: AgentCommandPrep | None = None
    if config.mqtt.enabled:
        # Until the agent takes them over, the worker's alarms are only logged.
        seen = SeenCommands.open(config.state_dir)
        if config.mqtt.command_worker == "process":  # see runtime.command_worker
            command_worker = WorkerProcess(config, _log_alarm, log_settings=logging_settings())
            inbox = CommandInbox(None, seen, preparer=command_worker)
        else:
            command_prep = AgentCommandPrep(config, manifest, _log_alarm, holds)
            inbox = CommandInbox(command_prep, seen, command_rules(config))
        link = MqttLink(config, outbox, inbox.submit, rules_version=rules.version)

    hub = DeviceHub()
    for name, device in config.devices.items():
        port = port_for_device(name, device, profiles[name])
        if config.pairing.mode == "poll-after-scan" and roles[name] == "scale":
            # Each reply must answer the request made for one parcel: a periodic poll's reply
            # looks the same on the wire (MT-SICS S and SI) and would answer the wrong parcel.
            port.poll_period_ns = None
        hub.add(port)

    notifier = SystemdNotifier.from_environment()
    watchdog = Watchdog(notifier, WATCHED_COMPONENTS, stale_after_s=WATCHDOG_STALE_S)
    return Components(
        hub=hub, roles=roles, device_for_role=device_for_role, rules=rules,
        rules_source=rules_source, manifest=manifest, outbox=outbox, link=link, inbox=inbox,
        notifier=notifier, watchdog=watchdog, state_lock=state_lock,
        command_prep=command_prep, command_worker=command_worker, holds=holds,
    )


def _log_alarm(alarm: str, severity: str, message: str, details: dict) -> None:
    structlog.get_logger(__name__).warning("alarm", alarm=alarm, severity=severity,
                                           message=message, **details)
