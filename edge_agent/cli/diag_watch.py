"""`edge-agent diag ports` and `diag watch`: the technicians' view of the serial side.

`diag ports` lists serial ports with their stable by-id names; `diag watch` opens one or more
devices with their profiles (polling them when the profile says so), or every device of the
agent's config (`--config`, when the agent is stopped: it holds its ports exclusively), and
prints every decoded message live on one line of at most 80 columns (a stable weight shows how
long it has held its value), then a summary of counts when stopped.
"""

from __future__ import annotations

import argparse
import json
import signal
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_agent.cli.diag_format import WATCH_WIDTH, SteadyClock, describe
from edge_agent.errors import EdgeAgentError
from edge_agent.safe_text import terminal_safe

# One hub.poll() waits at most this long, so --seconds and signals are honoured promptly.
WATCH_POLL_S = 0.1


# -- diag ports ----------------------------------------------------------------------------
def add_ports_parser(commands: argparse._SubParsersAction) -> None:
    ports = commands.add_parser("ports", help="list serial ports with by-id names and vendors")
    ports.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    ports.set_defaults(handler=run_ports)


def run_ports(args: argparse.Namespace) -> int:
    from edge_agent.devices.discovery import list_serial_ports

    ports = list_serial_ports()
    if args.json:
        print(json.dumps([port.to_dict() for port in ports], indent=2))
        return 0
    if not ports:
        print("no serial ports found")
    for port in ports:
        vendor = " ".join(filter(None, (port.manufacturer, port.product))) or port.description
        ids = f" [{port.vid:04x}:{port.pid:04x}]" if port.vid is not None and port.pid else ""
        # Manufacturer and product strings come from the USB device itself.
        print(terminal_safe(f"{port.device}{ids}  {vendor or '-'}"))
        for link in port.by_id:
            print(terminal_safe(f"    {link}"))
    return 0


# -- diag watch ----------------------------------------------------------------------------
@dataclass(frozen=True)
class WatchTarget:
    name: str
    path: str
    profile: str


def parse_device_spec(text: str) -> WatchTarget:
    """`NAME=PATH:PROFILE`, e.g. `scale=/dev/serial/by-id/usb-X-if00:mt-sics`."""
    name, equals, rest = text.partition("=")
    path, colon, profile = rest.rpartition(":")
    if not (equals and colon and name and path and profile):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME=PATH:PROFILE (e.g. scale=/dev/ttyUSB0:mt-sics)"
        )
    return WatchTarget(name, path, profile)


def add_watch_parser(commands: argparse._SubParsersAction) -> None:
    watch = commands.add_parser("watch", help="print live decoded messages from devices")
    watch.add_argument("--port", help="serial port path, tcp://HOST:PORT or "
                       "tcp-listen://HOST:PORT (with --profile)")
    watch.add_argument("--profile", help="firmware profile of the device on --port")
    watch.add_argument("--device", action="append", type=parse_device_spec, default=[],
                       metavar="NAME=PATH:PROFILE", help="a device to watch (repeatable)")
    watch.add_argument("--config", type=Path, metavar="FILE",
                       help="watch every device the agent's config names (agent stopped)")
    watch.add_argument("--baudrate", type=int, help="override the profile's baud rate")
    watch.add_argument("--poll-ms", type=int, help="override the profile's poll period")
    watch.add_argument("--json", action="store_true", help="JSON lines instead of one-liners")
    watch.add_argument("--count", type=int, help="stop after this many messages")
    watch.add_argument("--seconds", type=float, help="stop after this many seconds")
    watch.set_defaults(handler=run_watch)


def _targets(args: argparse.Namespace) -> list[WatchTarget]:
    targets = list(args.device)
    if getattr(args, "config", None) is not None:
        from edge_agent.config import load_config  # ConfigError: the CLI exits 2
        from edge_agent.devices.ports import device_location

        config = load_config(args.config)
        targets += [WatchTarget(name, device_location(device), device.profile)
                    for name, device in config.devices.items()]
    if args.port or args.profile:
        if not (args.port and args.profile):
            raise EdgeAgentError("diag watch: --port and --profile go together")
        targets.insert(0, WatchTarget("device", args.port, args.profile))
    if not targets:
        raise EdgeAgentError(
            "diag watch: name a device with --port/--profile, --device or --config")
    names = [target.name for target in targets]
    if len(set(names)) != len(names):
        raise EdgeAgentError(f"diag watch: device names repeat: {', '.join(names)}")
    return targets


def _summary(hub: Any, tally: dict[str, dict[str, int]]) -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for name, state in hub.states().items():
        counters = state["counters"]
        out[name] = {
            "state": state["state"],
            "frames": counters["frames"],
            "weights": tally[name].get("weight", 0),
            "scans": tally[name].get("scan", 0),
            "errors": counters["decode_errors"],
            "garbage_bytes": counters["garbage_bytes"],
            "io_errors": counters["io_errors"],
            "reconnects": counters["reconnects"],
        }
    return out


def _settle_network_links(hub: Any) -> list[Any]:
    """A connect to a device on the network finishes in the hub's loop: wait for each to link
    or fail (at most its connect timeout), so a refused address is said, not watched in
    silence. Devices that connect to us are not waited for: they come when they come."""
    clients = [port for port in hub.ports.values()
               if port.transport == "tcp" and port.endpoint.role == "client"]
    early: list[Any] = []  # messages read meanwhile, shown first
    if not clients:
        return early
    deadline = time.monotonic() + max(port.endpoint.connect_timeout_s for port in clients)
    while time.monotonic() < deadline and not all(
            port.connected or port.last_error for port in clients):
        early += hub.poll(WATCH_POLL_S)
    return early


def _refuse_unusable_ports(hub: Any) -> None:
    """A port held by another program, missing, or not a serial device would be retried
    silently forever (and the watch end with exit 0 having shown nothing): say so instead."""
    from edge_agent.devices.open_errors import is_busy

    busy = [f"{port.name} ({port.path})" for port in hub.ports.values()
            if is_busy(port.last_error)]
    if busy:
        raise EdgeAgentError(
            f"diag watch: port busy: {', '.join(busy)}; the running agent holds its ports "
            "exclusively: watch it with `edge-agent diag status --follow`, or stop it first "
            "(systemctl stop edge-agent)")
    unusable = [port for port in hub.ports.values() if not port.connected and port.last_error]
    if unusable:
        on_network = any(port.transport == "tcp" for port in unusable)
        advice = ("is the device on and its address right? `edge-agent doctor` checks the link"
                  if on_network else "`edge-agent diag ports` lists the serial ports there are")
        raise EdgeAgentError(
            "diag watch: cannot open "
            f"{'; '.join(f'{port.name}: {port.last_error}' for port in unusable)}; {advice}")


def run_watch(args: argparse.Namespace) -> int:
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.messages import message_to_dict
    from edge_agent.devices.ports import port_for_location
    from edge_agent.devices.profiles import load_profile

    targets = _targets(args)
    profiles = {target.name: load_profile(target.profile) for target in targets}
    stop = {"signal": False}

    def on_signal(*_: object) -> None:
        stop["signal"] = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    tally: dict[str, dict[str, int]] = {target.name: {} for target in targets}
    seen = 0
    hub = DeviceHub()
    try:
        for target in targets:
            try:
                port = port_for_location(target.name, target.path, profiles[target.name],
                                         baudrate=args.baudrate, poll_period_ms=args.poll_ms)
            except ValueError as exc:
                raise EdgeAgentError(f"diag watch: {exc}") from None
            hub.add(port)
        early = _settle_network_links(hub)
        _refuse_unusable_ports(hub)
        steady = SteadyClock()
        while not stop["signal"]:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if args.count is not None and seen >= args.count:
                break
            batch, early = early + hub.poll(WATCH_POLL_S), []
            for name, message in batch:
                if args.count is not None and seen >= args.count:
                    break
                seen += 1
                tally[name][message.kind] = tally[name].get(message.kind, 0) + 1
                if args.json:
                    print(json.dumps({"device": name, **message_to_dict(message)}), flush=True)
                else:
                    print(describe(name, message, steady.steady_s(name, message)), flush=True)
        summary = _summary(hub, tally)
    finally:
        hub.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if args.json:
        print(json.dumps({"summary": summary}))
    else:
        for name, counts in summary.items():
            text = f"{name}: " + ", ".join(f"{key} {value}" for key, value in counts.items())
            print("\n".join(textwrap.wrap(text, WATCH_WIDTH, subsequent_indent="    ")))
    return 0
