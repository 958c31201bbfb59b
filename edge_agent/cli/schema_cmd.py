"""`edge-agent schema [--out DIR]`: the MQTT contract as JSON Schemas and an AsyncAPI 3.0 file.

Without --out, prints the AsyncAPI document; with it, writes DIR/asyncapi.yaml and
DIR/schemas/*.json (the repository keeps them in docs/, checked by a test).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema", help="write the MQTT payload JSON Schemas and the AsyncAPI document"
    )
    parser.add_argument("--out", type=Path, metavar="DIR",
                        help="write DIR/asyncapi.yaml and DIR/schemas/*.json")
    parser.set_defaults(handler=run_schema)


def run_schema(args: argparse.Namespace) -> int:
    from edge_agent.errors import EdgeAgentError
    from edge_agent.sync.asyncapi import render_asyncapi_yaml, write_all

    if args.out is None:
        sys.stdout.write(render_asyncapi_yaml())
        return 0
    try:
        written = write_all(args.out)
    except OSError as exc:
        raise EdgeAgentError(f"cannot write to {args.out}: {exc.strerror or exc}") from None
    for path in written:
        print(path)
    return 0
