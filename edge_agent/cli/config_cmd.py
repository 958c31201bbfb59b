"""`edge-agent config check FILE`: validate a configuration file and report every problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("config", help="check configuration files")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    check = commands.add_parser("check", help="validate a config file; exit 2 on any problem")
    check.add_argument("file", type=Path)
    check.add_argument("--json", action="store_true", help="print {ok, problems} as JSON")
    check.set_defaults(handler=run_check)


def device_problems(config: AgentConfig) -> list[str]:
    """Problems that need the firmware profiles: unknown profile names, missing roles."""
    from edge_agent.devices.profiles import ProfileError, load_profile

    problems = []
    roles: dict[str, list[str]] = {}
    for name, device in config.devices.items():
        try:
            profile = load_profile(device.profile)
        except ProfileError as exc:
            problems.append(f"devices.{name}.profile: {exc}")
            continue
        roles.setdefault(profile.kind, []).append(name)
    for role, names in roles.items():
        if len(names) > 1:
            problems.append(f"devices: more than one {role} ({', '.join(sorted(names))})")
    return problems


def check_config_file(path: Path) -> tuple[AgentConfig | None, list[str]]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, exc.problems
    return config, device_problems(config)


def run_check(args: argparse.Namespace) -> int:
    config, problems = check_config_file(args.file)
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            print(f"{args.file}: {problem}")
    else:
        assert config is not None
        print(f"{args.file}: OK (site {config.site}, line {config.line}, "
              f"{len(config.devices)} devices)")
    return 2 if problems else 0


