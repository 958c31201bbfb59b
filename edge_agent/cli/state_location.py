"""Which state directory a technician's command means, and why.

`--state-dir DIR` wins; else the `state_dir` of `--config FILE`; else the `state_dir` of the
installed config (/etc/edge-agent/agent.toml) when there is one; else the service's default
/var/lib/edge-agent. The reason travels with the answer, so a command that finds nothing there
can say where it looked and why there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

# Where the shipped unit reads its config (docs/INSTALL.md), and the config's own default.
DEFAULT_CONFIG = Path("/etc/edge-agent/agent.toml")
DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")


@dataclass(frozen=True)
class StateLocation:
    state_dir: Path
    why: str  # e.g. "state_dir of /etc/edge-agent/agent.toml"
    config: AgentConfig | None = None


def add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", type=Path, metavar="DIR",
        help="the agent's state directory (default: the state_dir of --config, or of "
             f"{DEFAULT_CONFIG} when present, else {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--config", type=Path, metavar="FILE",
        help=f"the agent's config, read for its state_dir (default {DEFAULT_CONFIG} if present)",
    )


def locate(args: argparse.Namespace) -> StateLocation:
    """The state directory the arguments mean; a bad --config raises ConfigError (exit 2)."""
    from edge_agent.config import load_config

    config_path = getattr(args, "config", None)
    config = None
    if config_path is not None:
        config = load_config(config_path)
    elif DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
        config = load_config(DEFAULT_CONFIG)
    state_dir = getattr(args, "state_dir", None)
    if state_dir is not None:
        return StateLocation(state_dir, "--state-dir", config)
    if config is not None:
        return StateLocation(config.state_dir, f"state_dir of {config_path}", config)
    return StateLocation(
        DEFAULT_STATE_DIR, f"the default: no --state-dir, no --config and no {DEFAULT_CONFIG}"
    )
