"""`edge-agent diag scale --zero|--tare` and `diag scanner --trigger`: one command to a device.

The device is named either by `--port PATH --profile NAME` or by `--config FILE --device NAME`
(the port and profile the agent uses). The running agent holds its ports exclusively, so these
commands work when it is stopped; a busy port is reported as such, with what to do.
The command's bytes come from the profile (`polling.commands`); a profile without the command
is refused with the commands it does have.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.errors import EdgeAgentError
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK

# A scale answers zero/tare once stable: within a second or two of the load settling.
REPLY_WAIT_S = 3.0
# How long a triggered scanner reads before the trigger is released (a technician's wave).
TRIGGER_WINDOW_S = 3.0
# Opening a pty or a USB adapter takes milliseconds; a port still closed after this is not
# going to open.
OPEN_WAIT_S = 1.0
# A device that connects to the agent (tcp-listen://) retries on its own period: give it time.
DEVICE_CONNECT_WAIT_S = 10.0
HUB_STEP_S = 0.05
BUSY_ADVICE = "the running agent holds its ports: systemctl stop edge-agent, then try again"


@dataclass(frozen=True)
class DeviceTarget:
    name: str
    path: str
    profile: str
    baudrate: int | None = None


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", help="serial port path, tcp://HOST:PORT or "
                        "tcp-listen://HOST:PORT (with --profile)")
    parser.add_argument("--profile", help="firmware profile of the device on --port")
    parser.add_argument("--config", type=Path, metavar="FILE", help="the agent's config")
    parser.add_argument("--device", metavar="NAME", help="a device named in --config")


def device_target(args: argparse.Namespace, default_name: str) -> DeviceTarget:
    if args.config is not None:
        from edge_agent.config import load_config

        config = load_config(args.config)
        name = args.device or default_name
        if name not in config.devices:
            have = ", ".join(config.devices) or "none"
            raise EdgeAgentError(f"{args.config}: no device {name!r} (has: {have})")
        from edge_agent.devices.ports import device_location

        device = config.devices[name]
        return DeviceTarget(name, device_location(device), device.profile, device.baudrate)
    if not (args.port and args.profile):
        raise EdgeAgentError("name the device with --port and --profile, or --config FILE")
    return DeviceTarget(default_name, args.port, args.profile)


def check_profile(target: DeviceTarget, kind: str, command: str) -> None:
    """Refuse, before any port is opened, a profile of another kind of device (a sorter's
    profile for `diag scale`) or one without the command."""
    from edge_agent.devices.profiles import load_profile

    profile = load_profile(target.profile)
    if profile.kind != kind:
        raise EdgeAgentError(
            f"profile {profile.name} is a {profile.kind} profile; diag {kind} needs a {kind} "
            f"profile (edge-agent profiles list)")
    commands = profile.polling.commands
    if command not in commands:
        if command == "trigger_on":
            raise EdgeAgentError(
                f"profile {profile.name} has no trigger command: this scanner reads by itself "
                "(presence sensor or continuous mode). Present a barcode and watch it: "
                f"edge-agent diag watch --port {target.path} --profile {profile.name}")
        have = ", ".join(sorted(commands)) or "none"
        raise EdgeAgentError(
            f"profile {profile.name} has no {command!r} command (its commands: {have})")


def open_failure_text(path: str, reason: str | None, endpoint: Any = None) -> str:
    """Why a port would not open and what to do, for every `diag` command that opens one;
    `endpoint`: the device's network address, when it is on the network."""
    from edge_agent.devices.open_errors import is_busy

    if endpoint is not None:
        advice = ("is the device on and its address right? edge-agent doctor checks the link"
                  if endpoint.role == "client" else
                  "no device connected: is it set to connect to this address?")
    elif is_busy(reason):
        advice = BUSY_ADVICE
    else:
        advice = "check the path: edge-agent diag ports"
    return f"{path}: {reason or 'did not open'}; {advice}"


def open_port(target: DeviceTarget, profile: Any = None) -> tuple[Any, Any]:
    """(hub, port) with the port open; EdgeAgentError naming why it would not open. `profile`
    overrides the target's (a capture that sends nothing)."""
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.ports import port_for_location
    from edge_agent.devices.profiles import load_profile
    from edge_agent.devices.tcp_endpoint import parse_endpoint

    profile = profile or load_profile(target.profile)
    try:
        endpoint = parse_endpoint(target.path)
        port = port_for_location(target.name, target.path, profile, baudrate=target.baudrate)
    except ValueError as exc:
        raise EdgeAgentError(str(exc)) from None
    hub = DeviceHub()
    hub.add(port)
    # A device on the network may take its connect timeout; one that connects to us, longer.
    wait_s = OPEN_WAIT_S if endpoint is None else (
        endpoint.connect_timeout_s if endpoint.role == "client" else DEVICE_CONNECT_WAIT_S)
    deadline = time.monotonic() + wait_s
    while not port.connected and time.monotonic() < deadline:
        hub.poll(HUB_STEP_S)
    if not port.connected:
        hub.close()
        raise EdgeAgentError(open_failure_text(target.path, port.last_error, endpoint))
    return hub, port


def register_device_parsers(commands: argparse._SubParsersAction) -> None:
    scale = commands.add_parser("scale", help="zero or tare a scale")
    add_device_arguments(scale)
    action = scale.add_mutually_exclusive_group(required=True)
    action.add_argument("--zero", dest="command", action="store_const", const="zero",
                        help="zero the scale (empty platform)")
    action.add_argument("--tare", dest="command", action="store_const", const="tare",
                        help="tare the load on the platform")
    scale.set_defaults(handler=run_scale)

    scanner = commands.add_parser("scanner", help="trigger a scanner and show what it reads")
    add_device_arguments(scanner)
    scanner.add_argument("--trigger", action="store_true", required=True,
                         help="send the trigger, print reads, release the trigger")
    scanner.add_argument("--seconds", type=float, default=TRIGGER_WINDOW_S,
                         help=f"how long to read (default {TRIGGER_WINDOW_S:g})")
    scanner.set_defaults(handler=run_scanner)


def run_scale(args: argparse.Namespace) -> int:
    from edge_agent.cli.diag_format import describe

    target = device_target(args, "scale")
    check_profile(target, "scale", args.command)
    hub, port = open_port(target)
    try:
        request = port.codec.command(args.command)  # ProfileError lists the commands it has
        hub.send(target.name, request)
        print(f"sent {args.command} ({request!r}) to {target.path}")
        deadline = time.monotonic() + REPLY_WAIT_S
        while time.monotonic() < deadline:
            for name, message in hub.poll(HUB_STEP_S):
                if message.kind in ("reply", "error"):
                    print(describe(name, message))
                    return EXIT_OK if message.kind == "reply" else EXIT_FAILED
    finally:
        hub.close()
    print(f"no reply in {REPLY_WAIT_S:g} s: is the load stable? is the profile right?")
    return 1


def run_scanner(args: argparse.Namespace) -> int:
    from edge_agent.cli.diag_format import describe

    target = device_target(args, "scanner")
    check_profile(target, "scanner", "trigger_on")
    hub, port = open_port(target)
    reads = 0
    try:
        request = port.codec.command("trigger_on")
        hub.send(target.name, request)
        print(f"trigger on ({request!r}); reading for {args.seconds:g} s")
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            for name, message in hub.poll(HUB_STEP_S):
                print(describe(name, message))
                reads += message.kind == "scan"
        if "trigger_off" in port.profile.polling.commands:
            hub.send(target.name, port.codec.command("trigger_off"))
            print("trigger off")
    finally:
        hub.close()
    print(f"{reads} reads")
    return EXIT_OK if reads else EXIT_FAILED
