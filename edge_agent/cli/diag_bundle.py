"""`edge-agent diag bundle`: one archive for the central team (see diagnostics/bundle.py).

Prints where the archive is and what could not be collected. Exit 0 when written, 2 when the
output cannot be written.
"""

from __future__ import annotations

import argparse
import socket
from datetime import datetime
from pathlib import Path

from edge_agent.cli.doctor_cmd import DEFAULT_CONFIG
from edge_agent.errors import EdgeAgentError


def add_bundle_parser(commands: argparse._SubParsersAction) -> None:
    bundle = commands.add_parser("bundle", help="write a support archive for the central team")
    bundle.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the agent's config (default {DEFAULT_CONFIG})")
    bundle.add_argument("--out", type=Path, metavar="FILE",
                        help="archive path (default ./edge-agent-HOST-YYYYmmdd-HHMMSS.tar.gz)")
    bundle.add_argument("--socket", type=Path, metavar="PATH",
                        help="the running agent's status socket (default: from the config)")
    bundle.add_argument("--no-doctor", action="store_true",
                        help="leave out the doctor's checks (they open idle ports briefly)")
    bundle.set_defaults(handler=run_bundle)


def run_bundle(args: argparse.Namespace) -> int:
    from edge_agent.diagnostics.bundle import write_bundle

    out = args.out or Path(
        f"edge-agent-{socket.gethostname()}-{datetime.now():%Y%m%d-%H%M%S}.tar.gz")
    if not out.name.endswith(".tar.gz"):
        raise EdgeAgentError(f"--out {out}: the archive's name must end in .tar.gz")
    try:
        manifest = write_bundle(out, args.config, run_doctor=not args.no_doctor,
                                status_socket=args.socket)
    except OSError as exc:
        raise EdgeAgentError(f"--out {out}: {exc.strerror or exc}") from None
    print(f"wrote {out}: {', '.join(manifest['files'])}")
    for name, why in manifest["not_collected"].items():
        print(f"  not collected: {name}: {why}")
    print("send it to the central team (it holds no passwords or keys)")
    return 0
