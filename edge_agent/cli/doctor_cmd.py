"""`edge-agent doctor`: checks everything that commonly breaks an installation.

One line per check: PASS / WARN / FAIL, what was found, and what to do about it. `--json` prints
the same as a document. Exit code: 0 all pass, 1 a warning, 2 a failure (the worst result),
so a script can tell "works, look later" from "broken now" (the monitoring plugins'
convention: 0 OK, 1 WARNING, 2 CRITICAL). Detail and advice wrap at 80 columns, never cut.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

# Where the shipped unit reads its config (docs/INSTALL.md).
DEFAULT_CONFIG = Path("/etc/edge-agent/agent.toml")
VERDICT_EXIT_CODES = {"pass": EXIT_OK, "warn": EXIT_FAILED, "fail": EXIT_BAD_INPUT}
WIDTH = 80
INDENT = " " * 6


def register(subparsers: argparse._SubParsersAction) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check config, ports, devices, broker, disk, clock and service",
    )
    doctor.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the agent's config (default {DEFAULT_CONFIG})")
    doctor.add_argument("--service-user", default="edge-agent", metavar="USER",
                        help="the user the service runs as (default edge-agent)")
    doctor.add_argument("--socket", type=Path, metavar="PATH",
                        help="the running agent's status socket (default: from the config)")
    doctor.add_argument("--json", action="store_true", help="results as one JSON document")
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    from edge_agent.diagnostics.doctor import run_checks
    from edge_agent.diagnostics.results import worst
    from edge_agent.logs import configure_logging
    from edge_agent.safe_text import terminal_safe

    if not args.verbose:  # the ports' connect/disconnect logs would bury the checks' lines
        configure_logging(0, args.log_format, level="warning")

    results = run_checks(args.config, args.service_user, args.socket)
    verdict = worst(results).value
    if args.json:
        print(json.dumps({"result": verdict, "checks": [r.to_dict() for r in results]},
                         indent=2))
    else:
        for result in results:
            # Details quote what devices, the broker and the agent said: shown, not obeyed.
            head = terminal_safe(f"{result.status.value.upper():<4}  {result.name}: "
                                 f"{result.detail}")
            print("\n".join(textwrap.wrap(head, WIDTH, subsequent_indent=INDENT)))
            if result.advice:
                print("\n".join(textwrap.wrap(terminal_safe(f"-> {result.advice}"), WIDTH,
                                               initial_indent=INDENT,
                                               subsequent_indent=INDENT + "   ")))
        counts = {s: sum(r.status.value == s for r in results) for s in VERDICT_EXIT_CODES}
        print(f"\n{verdict.upper()}: {counts['pass']} pass, {counts['warn']} warn, "
              f"{counts['fail']} fail")
    return VERDICT_EXIT_CODES[verdict]
