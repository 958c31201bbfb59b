"""`edge-agent run --config FILE`: the service itself (systemd runs this)."""

from __future__ import annotations

import argparse
import gc
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser("run", help="run the agent on the line (the systemd service)")
    run.add_argument("--config", type=Path, required=True, help="agent config TOML")
    run.set_defaults(handler=run_agent)


def run_agent(args: argparse.Namespace) -> int:
    # Start-up makes tens of thousands of objects that live for good: collecting them while
    # they are made only delays READY. The agent freezes them and re-enables the collector.
    gc.disable()
    from edge_agent.config import load_config
    from edge_agent.logs import configure_logging

    config = load_config(args.config)
    # The file's logging settings apply unless the command line asked for more detail.
    configure_logging(args.verbose, args.log_format if args.log_format != "auto"
                      else config.logging.format, config.logging.level)

    from edge_agent.runtime.agent import Agent

    return Agent.from_config(config).run()
