"""`edge-agent`: the entry point for the service and the technicians' commands.

Each command group lives in its own module under edge_agent.cli with a `register(subparsers)`
function that adds its parsers and sets `handler(args) -> exit code`. Modules import their heavy
dependencies inside handlers, so `edge-agent --help` and start-up stay fast.

Exit codes: 0 ok, 1 the command ran and found a failure (e.g. a check failed), 2 bad input
(bad file, bad arguments: a clear message says which), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from edge_agent import __version__
from edge_agent.errors import EdgeAgentError

# One module per command group, in the order `--help` lists them.
COMMAND_MODULES = (
    "edge_agent.cli.demo_cmd",
    "edge_agent.cli.run_cmd",
    "edge_agent.cli.config_cmd",
    "edge_agent.cli.profiles_cmd",
    "edge_agent.cli.decide_cmd",
    "edge_agent.cli.rules_cmd",
    "edge_agent.cli.replay_cmd",
    "edge_agent.cli.manifest_cmd",
    "edge_agent.cli.doctor_cmd",
    "edge_agent.cli.diag_cmd",
    "edge_agent.cli.simulate_cmd",
    "edge_agent.cli.schema_cmd",
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Sorting-line controller: serial devices -> local decisions -> MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="more detail: -v debug, -vv debug plus raw frames in hex",
    )
    parser.add_argument(
        "--log-format", choices=("auto", "json", "console"), default="auto",
        help="log output: JSON lines when not on a terminal by default",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # A group given without its subcommand prints that group's help.
        (getattr(args, "group_parser", None) or parser).print_help()
        return EXIT_BAD_INPUT

    from edge_agent.logs import configure_logging

    configure_logging(args.verbose, args.log_format)
    try:
        return int(handler(args))
    except EdgeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        return EXIT_OK
