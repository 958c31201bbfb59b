"""`edge-agent config check FILE`: validate a configuration file and report every problem."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.config import AgentConfig, load_config
from edge_agent.errors import ConfigError
from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("config", help="check configuration files")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    check = commands.add_parser("check", help="validate a config file; exit 2 on any problem")
    check.add_argument("file", type=Path, help="the agent's config TOML")
    check.add_argument("--json", action="store_true", help="print {ok, problems} as JSON")
    check.set_defaults(handler=run_check)
    example = commands.add_parser(
        "example", help="print an example agent.toml with every setting, each commented")
    example.set_defaults(handler=run_example)


def device_problems(config: AgentConfig) -> list[str]:
    """Problems that need the firmware profiles: unknown profile names, and device kinds that
    do not make a line (edge_agent.devices.line_devices)."""
    from edge_agent.devices.line_devices import line_problems
    from edge_agent.devices.profiles import ProfileError, load_profile

    problems = []
    kinds: dict[str, str] = {}
    sorter_driven = False
    for name, device in config.devices.items():
        try:
            profile = load_profile(device.profile)
        except ProfileError as exc:
            problems.append(f"devices.{name}.profile: {exc}")
            continue
        kinds[name] = profile.kind
        sorter_driven = sorter_driven or profile.decode.protocol == "sorter-host"
    return problems + line_problems(kinds, sorter_driven)


def file_problems(config: AgentConfig) -> list[str]:
    """Problems with the files the config names that `run` reads: the TLS files (present,
    readable, PEM of the right kind). The agent still sorts without them (the link stays
    down), which is why a clean `config check` must have looked."""
    from edge_agent.sync.tls_files import tls_problems

    if not config.mqtt.enabled or config.mqtt.tls is None:
        return []
    return tls_problems(config.mqtt.tls)


def check_config_file(path: Path) -> tuple[AgentConfig | None, list[str]]:
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, exc.problems + _unknown_profiles(path, exc.problems)
    return config, device_problems(config) + file_problems(config)


def _unknown_profiles(path: Path, known: list[str]) -> list[str]:
    """Unknown profile names in a file that failed validation for other reasons: every
    problem is reported at once, not the profiles only once the rest is fixed."""
    from edge_agent.devices.profiles import ProfileError, load_profile
    from edge_agent.validation import read_toml

    try:
        devices = read_toml(path).get("devices")
    except ValueError:
        return []  # unreadable or not TOML: already the one problem reported
    if not isinstance(devices, dict):
        return []
    problems = []
    for name, device in devices.items():
        profile = device.get("profile") if isinstance(device, dict) else None
        where = f"devices.{name}.profile"
        if not isinstance(profile, str) or any(p.startswith(where) for p in known):
            continue
        try:
            load_profile(profile)
        except ProfileError as exc:
            problems.append(f"{where}: {exc}")
    return problems


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
    return EXIT_BAD_INPUT if problems else EXIT_OK




EXAMPLE_FILE = "agent.example.toml"


def example_text() -> str:
    from importlib.resources import files

    return files("edge_agent.defaults").joinpath(EXAMPLE_FILE).read_text(encoding="utf-8")


def run_example(args: argparse.Namespace) -> int:
    print(example_text(), end="")
    return 0
