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
from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK

# The module of each command group, in the order `--help` lists them.
COMMANDS = {
    "demo": "edge_agent.cli.demo_cmd",
    "run": "edge_agent.cli.run_cmd",
    "config": "edge_agent.cli.config_cmd",
    "profiles": "edge_agent.cli.profiles_cmd",
    "decide": "edge_agent.cli.decide_cmd",
    "rules": "edge_agent.cli.rules_cmd",
    "replay": "edge_agent.cli.replay_cmd",
    "manifest": "edge_agent.cli.manifest_cmd",
    "doctor": "edge_agent.cli.doctor_cmd",
    "diag": "edge_agent.cli.diag_cmd",
    "simulate": "edge_agent.cli.simulate_cmd",
    "schema": "edge_agent.cli.schema_cmd",
    "completion": "edge_agent.cli.completion_cmd",
}
COMMAND_MODULES = tuple(COMMANDS.values())


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (`only`) one with just that command group: the service's start-up
    (`edge-agent run`) then imports none of the technicians' commands."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Sorting-line controller: serial devices -> local decisions -> MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    _add_global_options(parser, default_verbose=0, default_format="auto")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = [only] if only in COMMANDS else list(COMMANDS)
    for name in names:
        importlib.import_module(COMMANDS[name]).register(subparsers)
    for command in subcommand_parsers(parser):
        # `edge-agent diag watch -vv` as well as `edge-agent -vv diag watch`: the README and
        # habit put them after the command. SUPPRESS: absent there, the value before stays.
        _add_global_options(command, default_verbose=argparse.SUPPRESS,
                            default_format=argparse.SUPPRESS)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, default_verbose: object,
                        default_format: object) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=default_verbose,
        help="more detail: -v debug, -vv debug plus raw frames in hex",
    )
    parser.add_argument(
        "--log-format", choices=("auto", "json", "console"), default=default_format,
        help="log output: JSON lines when not on a terminal by default",
    )


def subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below `parser` (groups and their subcommands), depth first."""
    found = []
    for action in parser._actions:  # argparse keeps its tree there; no public way to walk it
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
                found += [child, *subcommand_parsers(child)]
    return found


def _command_named(argv: Sequence[str]) -> str | None:
    """The command group in argv (skipping the global options before it), if any."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--log-format":
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(only=_command_named(argv))
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
        from edge_agent.safe_text import terminal_safe  # a message may quote a bad input

        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error worth a traceback.
        return EXIT_OK
