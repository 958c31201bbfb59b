"""`edge-agent demo`: a simulated line end to end (the README's first command)."""

from __future__ import annotations

import argparse
from pathlib import Path

# A minute of a busy line at a brisk rate: long enough to see every route and exception.
DEFAULT_PARCELS = 2000
DEFAULT_RATE = 100.0


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run a simulated line end to end: devices, agent, broker, central",
    )
    demo.add_argument("--parcels", type=_positive_int, default=DEFAULT_PARCELS,
                      help=f"how many parcels the simulated line sends (default {DEFAULT_PARCELS})")
    demo.add_argument("--rate", type=_positive_float, default=DEFAULT_RATE,
                      help="parcels per second (default %(default)s)")
    demo.add_argument("--out", type=Path, default=None,
                      help="keep the run's files here (default: a temporary directory)")
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edge_agent.simulation.demo import run_demo

    return run_demo(args.parcels, args.rate, args.out)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value
