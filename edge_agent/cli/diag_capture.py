"""`edge-agent diag capture`: record a port's raw bytes to a file, to replay or turn into a test.

    edge-agent diag capture --config /etc/edge-agent/agent.toml --device scale --out scale.bin
    edge-agent profiles decode mt-sics --file scale.bin      # replays it through the profile

The capture reads through the agent's own supervised port (devices/port.py), so it talks to the
device the way the agent does (start-up commands, then the profile's poll at its period; a
polled scale says nothing unless asked) and stamps each chunk as the agent would; `--listen-only`
sends nothing. It stops after --seconds or --bytes, on Ctrl-C, or when the device goes away,
keeping what was read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.cli.diag_device import (
    HUB_STEP_S,
    OPEN_WAIT_S,
    add_device_arguments,
    device_target,
    open_failure_text,
)
from edge_agent.errors import EdgeAgentError
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.port import SupervisedPort
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
                         help="send nothing (no start-up commands, no polls)")
    capture.set_defaults(handler=run_capture)


def run_capture(args: argparse.Namespace) -> int:
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.port import SupervisedPort
    from edge_agent.devices.profiles import load_profile
    from edge_agent.diagnostics.capture import CaptureWriter, times_path

    target = device_target(args, "device")
    profile = load_profile(target.profile)
    tap = _Tap()
    started_ns = time.monotonic_ns()
    hub = DeviceHub()
    try:
        # The agent's own port, talking to the device as the agent does (unless --listen-only).
        port = hub.add(SupervisedPort(target.name, target.path, profile, baudrate=target.baudrate,
                                      quiet=args.listen_only, on_bytes=tap))
        deadline = time.monotonic() + OPEN_WAIT_S
        while not port.connected and time.monotonic() < deadline:
            hub.poll(HUB_STEP_S)
        if not port.connected:
            raise EdgeAgentError(open_failure_text(target.path, port.last_error))
        try:
            writer = CaptureWriter(args.out, start_ns=started_ns)
        except OSError as exc:
            raise EdgeAgentError(f"--out {args.out}: {exc.strerror or exc}") from None
        try:
            tap.start(writer)
            _record(hub, port, writer, args)
        finally:
            writer.close()
    finally:
        hub.close()
    print(f"{writer.bytes} bytes in {writer.chunks} reads -> {args.out} "
          f"(times in {times_path(args.out).name})")
    print(f"replay: edge-agent profiles decode {profile.name} --file {args.out}")
    return EXIT_OK if writer.bytes else EXIT_FAILED


class _Tap:
    """The port's raw chunks, held until the capture file is open (a chunk may come with the
    open itself), then written as they come."""

    def __init__(self) -> None:
        self._early: list[tuple[bytes, int]] = []
        self._writer: CaptureWriter | None = None

    def __call__(self, chunk: bytes, received_ns: int) -> None:
        if self._writer is None:
            self._early.append((chunk, received_ns))
        else:
            self._writer.write(chunk, received_ns)

    def start(self, writer: CaptureWriter) -> None:
        self._writer = writer
        for chunk, received_ns in self._early:
            writer.write(chunk, received_ns)
        self._early.clear()


def _record(hub: DeviceHub, port: SupervisedPort, writer: CaptureWriter,
            args: argparse.Namespace) -> None:
    """Until --seconds or --bytes, Ctrl-C, or the device goes away, keeping what was read."""
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            if args.max_bytes is not None and writer.bytes >= args.max_bytes:
                break
            hub.poll(min(HUB_STEP_S, max(0.0, deadline - time.monotonic())))
            if not port.connected:
                print(f"the device went away ({port.last_error}); keeping what was read")
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to end a capture: keep the file
