"""`edge-agent simulate scanner|scale|dws|sorter`: a simulated device on a pseudo-terminal.

For bench tests and demos without hardware: point the agent (or `diag watch`) at the printed
path. The scanner sends each line typed on stdin as a barcode (`NOREAD` sends a no-read); the
scale answers polls with `--weight`; the DWS unit sends one record per line typed on stdin,
`LABEL[,LABEL...] WEIGHT_KG [LxWxH_MM]` (`NOREAD` for no label, no size: not measured); the
sorter acknowledges lane commands and prints each as a JSON line; a sorter-driven one
(`--profile sorter-host-json`) asks for a destination for each line typed on stdin,
`TRACKING LABEL[,LABEL...] WEIGHT_KG [LxWxH_MM]`, prints each reply as a JSON line and reports
the parcel sorted. Runs until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

NO_READ_LINE = "NOREAD"
# The main thread wakes this often, so a signal is acted on even where waits are not interrupted.
SIGNAL_CHECK_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    from edge_agent.devices.simulators.dws import DWS_PROFILES
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
        network = parser.add_mutually_exclusive_group()
        network.add_argument("--tcp", type=_address, metavar="HOST:PORT",
                             help="on the network instead of a pty: listen there (the agent "
                             "connects, tcp://HOST:PORT)")
        network.add_argument("--connect", type=_address, metavar="HOST:PORT",
                             help="on the network: connect to an agent listening there "
                             "(tcp-listen://HOST:PORT)")
        parser.add_argument("--json", action="store_true", help="print the paths as JSON")
        parser.set_defaults(handler=run_simulate, simulate_kind=kind)
        return parser

    add("scanner", "barcodes typed on stdin, one per line", tuple(SCANNER_STYLES),
        "generic-scanner")
    scale = add("scale", "a scale answering polls", SCALE_PROFILES, "mt-sics")
    scale.add_argument("--weight", type=float, default=0.0, metavar="KG",
                       help="the weight on the platform (default 0)")
    scale.add_argument("--unstable", action="store_true", help="the load never settles")
    add("dws", "a DWS unit: one parcel per line on stdin, LABEL[,LABEL...] KG [LxWxH]",
        DWS_PROFILES, "generic-dws")
    sorter = add("sorter", "acknowledges lane commands (or, sorter-host-json: asks for "
                 "destinations, one parcel per stdin line), prints each as JSON",
                 ("generic-divert", "sorter-host-json"), "generic-divert")
    sorter.add_argument("--ack-delay-ms", type=float, default=0.0, metavar="MS",
                        help="how long the sorter waits before acknowledging (default 0)")
    from edge_agent.devices.simulators.sorter import OUTCOME_LINES

    sorter.add_argument("--outcome", choices=("none", *OUTCOME_LINES), default="none",
                        help="the confirmation sent after each ACK (default none: ACK only)")

    from edge_agent.cli.simulate_line import add_line_parser

    add_line_parser(kinds)


def _address(text: str) -> tuple[str, int]:
    """HOST:PORT for --tcp/--connect, HOST an IP address (checked as the agent checks it)."""
    from edge_agent.devices.tcp_endpoint import parse_endpoint

    try:
        endpoint = parse_endpoint("tcp://" + text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("'tcp://")) from None
    assert endpoint is not None
    return endpoint.host, endpoint.port


def _make_simulator(args: argparse.Namespace) -> Any:
    simulator = _make_device(args)
    if getattr(args, "tcp", None):
        simulator.serve_tcp(*args.tcp)
    elif getattr(args, "connect", None):
        simulator.connect_tcp(*args.connect)
    return simulator


def _make_device(args: argparse.Namespace) -> Any:
    from edge_agent.devices.simulators import (
        DwsSimulator,
        ScaleSimulator,
        ScannerSimulator,
        SorterSimulator,
    )

    if args.simulate_kind == "scanner":
        return ScannerSimulator(args.profile, args.link)
    if args.simulate_kind == "dws":
        return DwsSimulator(args.profile, args.link)
    if args.simulate_kind == "scale":
        simulator = ScaleSimulator(args.profile, args.link, weight_kg=args.weight,
                                   stable=not args.unstable)
        simulator.never_stabilises = args.unstable
        return simulator
    if args.profile == "sorter-host-json":
        from edge_agent.devices.simulators.host_sorter import HostSorterSimulator

        return HostSorterSimulator(args.link)
    sorter = SorterSimulator(args.link, ack_delay_s=args.ack_delay_ms / 1000)
    sorter.outcome = None if args.outcome == "none" else args.outcome
    sorter.on_lane_command = lambda command: _print_line(json.dumps({
        "parcel_id": command.parcel_id, "bin": command.bin, "received_ns": command.received_ns,
    }))
    return sorter


_print_lock = threading.Lock()


def _print_line(text: str) -> None:
    with _print_lock:
        print(text, flush=True)


def _stdin_lines(stopping: list[int]) -> Iterator[str]:
    """The lines typed or piped in, stripped, blank ones skipped, until a signal asks to stop."""
    for line in sys.stdin:
        if stopping:
            return
        if line.strip():
            yield line.strip()


def _feed_barcodes(scanner: Any, stopping: list[int]) -> None:
    for code in _stdin_lines(stopping):
        if code == NO_READ_LINE:
            scanner.no_read()
        else:
            scanner.scan(code)


def parse_dws_line(line: str) -> tuple[list[str], float, tuple[float, float, float] | None]:
    """`LABEL[,LABEL...] WEIGHT_KG [LxWxH]` (sides in mm); ValueError saying what is wrong."""
    parts = line.split()
    if len(parts) not in (2, 3):
        raise ValueError("expected LABEL[,LABEL...] WEIGHT_KG [LxWxH], e.g. LP1 1.5 300x200x100")
    labels = [] if parts[0] == NO_READ_LINE else [p for p in parts[0].split(",") if p]
    weight = float(parts[1])
    dims = None
    if len(parts) == 3:
        sides = [float(side) for side in parts[2].lower().split("x")]
        if len(sides) != 3:
            raise ValueError(f"size {parts[2]!r}: expected LxWxH in mm, e.g. 300x200x100")
        dims = (sides[0], sides[1], sides[2])
    return labels, weight, dims


def _feed_dws_records(unit: Any, stopping: list[int]) -> None:
    for line in _stdin_lines(stopping):
        try:
            labels, weight, dims = parse_dws_line(line)
        except ValueError as exc:
            print(f"simulate dws: {exc}", file=sys.stderr, flush=True)
            continue
        unit.measure(labels, weight, dims)


def _feed_sorter_parcels(sorter: Any, stopping: list[int]) -> None:
    """`TRACKING LABEL[,LABEL...] KG [LxWxH]` per line: a parcel inducted; its reply printed."""
    for line in _stdin_lines(stopping):
        tracking, _, rest = line.partition(" ")
        try:
            labels, weight, dims = parse_dws_line(rest)
        except ValueError as exc:
            print(f"simulate sorter: TRACKING then {exc}", file=sys.stderr, flush=True)
            continue
        seq = sorter.induct(tracking, labels, weight, dims)
        if sorter.wait_until(lambda t=tracking: sorter.parcels[t].replies, 2.0):
            reply = sorter.parcels[tracking].replies[0]
            _print_line(json.dumps({key: reply.get(key) for key in (
                "seq", "tracking", "chutes", "fallback", "barcode", "late")}))
        else:
            print(f"simulate sorter: no reply to request {seq} within 2 s", file=sys.stderr,
                  flush=True)


def run_simulate(args: argparse.Namespace) -> int:
    simulator = _make_simulator(args)
    simulator.start()
    # The handler only appends to a list: setting a threading.Event from a signal handler can
    # deadlock on the lock the interrupted main thread holds inside Event.wait().
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stopping.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        on_network = bool(getattr(args, "tcp", None) or getattr(args, "connect", None))
        if args.json:
            where = ({"url": simulator.url} if on_network else
                     {"pty": simulator.slave_path, "link": str(simulator.path)})
            _print_line(json.dumps({"device": args.simulate_kind, "profile": args.profile,
                                    **where}))
        elif on_network:
            _print_line(f"simulated {args.simulate_kind} ({args.profile}) on the network: the "
                        f"agent's port is {simulator.url}")
        else:
            _print_line(f"simulated {args.simulate_kind} ({args.profile}) on "
                        f"{simulator.slave_path}, link {simulator.path}")
        feeders = {"scanner": _feed_barcodes, "dws": _feed_dws_records}
        if args.simulate_kind == "sorter" and args.profile == "sorter-host-json":
            feeders["sorter"] = _feed_sorter_parcels
        if args.simulate_kind in feeders:
            threading.Thread(target=feeders[args.simulate_kind], args=(simulator, stopping),
                             daemon=True).start()
        idle = threading.Event()  # never set: only a bounded wait between looks at the flag
        while not stopping:
            idle.wait(SIGNAL_CHECK_S)
    finally:
        simulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
