"""`edge-agent diag capture`: record a port's raw bytes to a file, to replay or turn into a test.

    edge-agent diag capture --config /etc/edge-agent/agent.toml --device scale --out scale.bin
    edge-agent profiles decode mt-sics --file scale.bin      # replays it through the profile

The capture reads through the agent's own port (a serial port or a TCP link, devices/ports.py),
so it talks to the device the way the agent does (start-up commands, then the profile's poll at
its period; a polled scale says nothing unless asked) and stamps each chunk as the agent would;
`--listen-only` sends nothing. It stops after --seconds or --bytes, on Ctrl-C, or when a serial
device goes away, keeping what was read; a network link that drops is made again and the
capture goes on.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.cli.diag_device import HUB_STEP_S, add_device_arguments, device_target
from edge_agent.errors import EdgeAgentError
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.profiles import Profile
    from edge_agent.diagnostics.capture import CaptureWriter

DEFAULT_SECONDS = 10.0


def add_capture_parser(commands: argparse._SubParsersAction) -> None:
    capture = commands.add_parser("capture", help="record a port's raw bytes to a file")
    add_device_arguments(capture)
    capture.add_argument("--out", type=Path, required=True, metavar="FILE",
                         help="where to write the bytes (FILE.times gets the read times)")
    capture.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                         help=f"stop after this long (default {DEFAULT_SECONDS:g})")
    capture.add_argument("--bytes", type=int, dest="max_bytes", help="stop after this many")
    capture.add_argument("--listen-only", action="store_true",
                         help="send nothing (no start-up commands, polls or heartbeats)")
    capture.set_defaults(handler=run_capture)


def run_capture(args: argparse.Namespace) -> int:
    from edge_agent.cli.diag_device import open_port
    from edge_agent.devices.profiles import load_profile
    from edge_agent.devices.tcp_endpoint import parse_endpoint
    from edge_agent.diagnostics.capture import CaptureWriter, times_path

    target = device_target(args, "device")
    profile = load_profile(target.profile)
    try:
        on_network = parse_endpoint(target.path) is not None
    except ValueError as exc:
        raise EdgeAgentError(str(exc)) from None
    hub, port = open_port(target, _listening(profile) if args.listen_only else profile)
    try:
        try:  # once the port is open: a port that would not open leaves no file behind
            writer = CaptureWriter(args.out)
        except OSError as exc:
            raise EdgeAgentError(f"--out {args.out}: {exc.strerror or exc}") from None
        port.tap = writer.write  # every chunk as read, with the stamp the agent would give it
        try:
            _record(hub, port, writer, args, ends_when_gone=not on_network)
        finally:
            writer.close()
    finally:
        hub.close()
    print(f"{writer.bytes} bytes in {writer.chunks} reads -> {args.out} "
          f"(times in {times_path(args.out).name})")
    print(f"replay: edge-agent profiles decode {profile.name} --file {args.out}")
    return EXIT_OK if writer.bytes else EXIT_FAILED


def _listening(profile: Profile) -> Profile:
    """The same device, with nothing to send: no start-up or shutdown commands, no polls, no
    heartbeats."""
    quiet = profile.polling.model_copy(update={"mode": "none", "startup": [], "shutdown": [],
                                               "request": None})
    silent = profile.tcp.model_copy(update={"heartbeat": None, "heartbeat_period_ms": None})
    return profile.model_copy(update={"polling": quiet, "tcp": silent})


def _record(hub: DeviceHub, port: Any, writer: CaptureWriter, args: argparse.Namespace, *,
            ends_when_gone: bool) -> None:
    """Until --seconds or --bytes, Ctrl-C, or (`ends_when_gone`) the device goes away."""
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            if args.max_bytes is not None and writer.bytes >= args.max_bytes:
                break
            hub.poll(min(HUB_STEP_S, max(0.0, deadline - time.monotonic())))
            if ends_when_gone and not port.connected:
                print(f"the device went away ({port.last_error}); keeping what was read")
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to end a capture: keep the file
