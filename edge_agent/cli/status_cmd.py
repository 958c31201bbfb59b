"""`edge-agent diag status`: ask the running agent for its state over its status socket.

The `diag` group lives in diag_cmd.py and calls `add_status_parser(commands)`. The screen is
drawn by status_view.py (rich, imported only by the views): the terminal's width, 80 columns
when the output is not a terminal; `--follow` redraws full-screen. `--json` prints the
document.
Exit codes: 0 answered, 1 no agent answering (or it answered with an error), 2 bad config file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK
from edge_agent.runtime.status_server import DEFAULT_STATUS_SOCKET

# Output that is not a terminal (a file, a pipe, the journal's pager): one screen wide.
WIDTH = 80

# The agent refreshes its snapshot a few times a second; once a second is readable by eye.
FOLLOW_INTERVAL_S = 1.0


def add_status_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "status", help="show the running agent's devices, lanes, counters, outbox and link",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, metavar="PATH",
                       help=f"the agent's status socket (default {DEFAULT_STATUS_SOCKET})")
    where.add_argument("--config", type=Path, metavar="FILE",
                       help="find the socket from the agent's config file (status.socket_path)")
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="how long to wait for the agent's answer (default 2)")
    parser.add_argument("--follow", action="store_true",
                        help="refresh until Ctrl-C (in place on a terminal)")
    parser.add_argument("--interval", type=float, default=FOLLOW_INTERVAL_S, metavar="SECONDS",
                        help=f"--follow: time between refreshes (default {FOLLOW_INTERVAL_S:g})")
    parser.add_argument("--count", type=int, metavar="N", help="--follow: stop after N refreshes")
    parser.set_defaults(handler=run_status)
    return parser


def status_socket_path(args: argparse.Namespace) -> Path:
    if getattr(args, "socket", None) is not None:
        return args.socket
    if getattr(args, "config", None) is not None:
        from edge_agent.config import load_config  # raises ConfigError: the CLI exits 2

        return load_config(args.config).status_socket
    return DEFAULT_STATUS_SOCKET


def _fallback_zone(args: argparse.Namespace) -> str | None:
    """The config's time zone, for an agent whose snapshot does not carry its own."""
    if getattr(args, "config", None) is None:
        return None
    from edge_agent.config import load_config

    return load_config(args.config).timezone


def run_status(args: argparse.Namespace) -> int:
    from edge_agent.runtime.status_server import StatusError, query_status

    path = status_socket_path(args)
    if getattr(args, "follow", False):
        try:
            return follow_status(path, args)
        except KeyboardInterrupt:  # Ctrl-C is how a technician ends --follow
            return EXIT_OK
    try:
        document = query_status(path, timeout_s=getattr(args, "timeout", 2.0))
    except StatusError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(render_status(document, _fallback_zone(args)), end="")
    return EXIT_OK


def render_status(document: dict[str, Any], fallback_zone: str | None = None) -> str:
    """The document as text: the terminal's width on a terminal, else WIDTH columns."""
    from edge_agent.cli.status_view import render_text

    width = shutil.get_terminal_size((WIDTH, 24)).columns if sys.stdout.isatty() else WIDTH
    return render_text(document, width=width, fallback_zone=fallback_zone)


def follow_status(path: Path, args: argparse.Namespace) -> int:
    """Refresh every --interval: full-screen on a terminal (status_view.follow_live), else
    plain blocks one after another (a log file, `| less`), or one JSON document per line with
    --json. An agent that stops answering is shown as such and asked again next time."""
    import time
    from datetime import datetime

    from edge_agent.runtime.status_server import StatusError, query_status

    def fetch() -> tuple[dict[str, Any], int]:
        try:
            return query_status(path, timeout_s=args.timeout), EXIT_OK
        except StatusError as exc:
            return {"error": str(exc)}, EXIT_FAILED

    zone = _fallback_zone(args)
    if sys.stdout.isatty() and not getattr(args, "json", False):
        from edge_agent.cli.status_view import follow_live

        return follow_live(fetch, interval_s=args.interval, count=args.count,
                           fallback_zone=zone)
    code = EXIT_OK
    shown = 0
    while args.count is None or shown < args.count:
        if shown:
            time.sleep(args.interval)  # the refresh period itself, not a wait for readiness
        document, code = fetch()
        shown += 1
        if getattr(args, "json", False):  # one JSON document per line, for a script to follow
            print(json.dumps(document, sort_keys=True), flush=True)
            continue
        stamp = f"-- {datetime.now():%H:%M:%S} (every {args.interval:g} s, Ctrl-C to stop) --"
        print(stamp + "\n" + render_status(document, zone), flush=True)
    return code
