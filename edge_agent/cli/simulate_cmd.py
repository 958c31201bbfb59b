"""`edge-agent simulate scanner|scale|sorter`: a simulated device on a pseudo-terminal.

For bench tests and demos without hardware: point the agent (or `diag watch`) at the printed
path. The scanner sends each line typed on stdin as a barcode (`NOREAD` sends a no-read); the
scale answers polls with `--weight`; the sorter acknowledges lane commands and prints each as a
JSON line. Runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

NO_READ_LINE = "NOREAD"
# The main thread wakes this often, so a signal is acted on even where waits are not interrupted.
SIGNAL_CHECK_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    from edge_agent.devices.simulators.scale import SCALE_PROFILES
    from edge_agent.devices.simulators.scanner import SCANNER_STYLES

    group = subparsers.add_parser("simulate", help="run a simulated serial device on a pty")
    group.set_defaults(group_parser=group)
    kinds = group.add_subparsers(dest="simulate_kind", metavar="DEVICE")

    def add(kind: str, help_text: str, profiles: tuple[str, ...], default: str) -> Any:
        parser = kinds.add_parser(kind, help=help_text)
        parser.add_argument("--profile", choices=profiles, default=default,
                            help=f"firmware profile to speak (default {default})")
        parser.add_argument("--link", type=Path,
                            help="stable symlink to the pty, like a /dev/serial/by-id name")
        parser.add_argument("--json", action="store_true", help="print the paths as JSON")
        parser.set_defaults(handler=run_simulate, simulate_kind=kind)
        return parser

    add("scanner", "barcodes typed on stdin, one per line", tuple(SCANNER_STYLES),
        "generic-scanner")
    scale = add("scale", "a scale answering polls", SCALE_PROFILES, "mt-sics")
    scale.add_argument("--weight", type=float, default=0.0, metavar="KG",
                       help="the weight on the platform (default 0)")
    scale.add_argument("--unstable", action="store_true", help="the load never settles")
    sorter = add("sorter", "acknowledges lane commands, prints each as JSON",
                 ("generic-divert",), "generic-divert")
    sorter.add_argument("--ack-delay-ms", type=float, default=0.0, metavar="MS",
                        help="how long the sorter waits before acknowledging (default 0)")

    from edge_agent.cli.simulate_line import add_line_parser

    add_line_parser(kinds)


def _make_simulator(args: argparse.Namespace) -> Any:
    from edge_agent.devices.simulators import ScaleSimulator, ScannerSimulator, SorterSimulator

    if args.simulate_kind == "scanner":
        return ScannerSimulator(args.profile, args.link)
    if args.simulate_kind == "scale":
        simulator = ScaleSimulator(args.profile, args.link, weight_kg=args.weight,
                                   stable=not args.unstable)
        simulator.never_stabilises = args.unstable
        return simulator
    sorter = SorterSimulator(args.link, ack_delay_s=args.ack_delay_ms / 1000)
    sorter.on_lane_command = lambda command: _print_line(json.dumps({
        "parcel_id": command.parcel_id, "bin": command.bin, "received_ns": command.received_ns,
    }))
    return sorter


_print_lock = threading.Lock()


def _print_line(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def _feed_barcodes(scanner: Any, stopping: list[int]) -> None:
    for line in sys.stdin:
        code = line.strip()
        if stopping:
            return
        if code == NO_READ_LINE:
            scanner.no_read()
        elif code:
            scanner.scan(code)


def run_simulate(args: argparse.Namespace) -> int:
    simulator = _make_simulator(args)
    simulator.start()
    # The handler only appends to a list: setting a threading.Event from a signal handler can
    # deadlock on the lock the interrupted main thread holds inside Event.wait().
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stopping.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.json:
            _print_line(json.dumps({"device": args.simulate_kind, "profile": args.profile,
                                    "pty": simulator.slave_path, "link": str(simulator.path)}))
        else:
            _print_line(f"simulated {args.simulate_kind} ({args.profile}) on "
                        f"{simulator.slave_path}, link {simulator.path}")
        if args.simulate_kind == "scanner":
            threading.Thread(target=_feed_barcodes, args=(simulator, stopping),
                             daemon=True).start()
        idle = threading.Event()  # never set: only a bounded wait between looks at the flag
        while not stopping:
            idle.wait(SIGNAL_CHECK_S)
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
