"""`edge-agent diag capture`: record a port's raw bytes to a file, to replay or turn into a test.

    edge-agent diag capture --config /etc/edge-agent/agent.toml --device scale --out scale.bin
    edge-agent profiles decode mt-sics --file scale.bin      # replays it through the profile

By default the capture talks to the device the way the agent does (start-up commands, then the
profile's poll at its period), because a polled scale says nothing unless asked; `--listen-only`
sends nothing. It stops after --seconds or --bytes, or on Ctrl-C, keeping what was read.
"""

from __future__ import annotations

import argparse
import os
import select
import time
from pathlib import Path

from edge_agent.cli.diag_device import add_device_arguments, device_target, open_failure_text
from edge_agent.errors import EdgeAgentError
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK
from edge_agent.units import NS_PER_MS

DEFAULT_SECONDS = 10.0
READ_CHUNK_BYTES = 4096
# select() wakes at least this often, so the poll period and the time limit are kept.
SELECT_STEP_S = 0.02


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
    import serial

    from edge_agent.devices.codec import make_codec
    from edge_agent.devices.open_errors import classify_open_error
    from edge_agent.devices.profiles import load_profile
    from edge_agent.diagnostics.capture import CaptureWriter, times_path

    target = device_target(args, "device")
    profile = load_profile(target.profile)
    codec = make_codec(profile)
    options = dict(profile.serial_kwargs(baudrate=target.baudrate))
    options.update(timeout=0, exclusive=True)
    try:
        port = serial.Serial(os.path.realpath(target.path), **options)
    except (OSError, serial.SerialException) as exc:
        reason = classify_open_error(exc).reason
        raise EdgeAgentError(open_failure_text(target.path, reason)) from None
    try:
        writer = CaptureWriter(args.out)
    except OSError as exc:
        port.close()
        raise EdgeAgentError(f"--out {args.out}: {exc.strerror or exc}") from None
    poll = codec.poll_request() if not args.listen_only else None
    period_ns = (profile.polling.period_ms or 0) * NS_PER_MS
    next_poll_ns = time.monotonic_ns()
    deadline = time.monotonic() + args.seconds
    try:
        if not args.listen_only:
            for command in codec.startup_commands():
                port.write(command)
        while time.monotonic() < deadline:
            if args.max_bytes is not None and writer.bytes >= args.max_bytes:
                break
            if poll is not None and period_ns and time.monotonic_ns() >= next_poll_ns:
                port.write(poll)
                next_poll_ns += period_ns
            readable, _, _ = select.select([port.fileno()], [], [], SELECT_STEP_S)
            if readable:
                chunk = os.read(port.fileno(), READ_CHUNK_BYTES)
                if not chunk:
                    print("the device went away; keeping what was read")
                    break
                writer.write(chunk, time.monotonic_ns())
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to end a capture: keep the file
    except OSError as exc:
        print(f"read failed ({exc.strerror or exc}); keeping what was read")
    finally:
        if not args.listen_only:
            for command in codec.shutdown_commands():
                try:
                    port.write(command)
                except (OSError, serial.SerialException):
                    break
        port.close()
        writer.close()
    print(f"{writer.bytes} bytes in {writer.chunks} reads -> {args.out} "
          f"(times in {times_path(args.out).name})")
    print(f"replay: edge-agent profiles decode {profile.name} --file {args.out}")
    return EXIT_OK if writer.bytes else EXIT_FAILED
