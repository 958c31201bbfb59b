"""Checks of the machine itself: config file, profiles, state directory, clock, service.

Commands (timedatectl, systemctl) run through `run_command`, which turns a missing binary or a
system without systemd into a result, never an exception.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from edge_agent.config import AgentConfig, load_config
from edge_agent.diagnostics.results import CheckResult, failed, passed, warned
from edge_agent.errors import ConfigError
from edge_agent.units import MIB

SERVICE_NAME = "edge-agent"
# systemctl / timedatectl answer in milliseconds; a hung D-Bus must not hang the doctor.
COMMAND_TIMEOUT_S = 5.0
# systemd creates this directory at boot; its absence means PID 1 is something else.
SYSTEMD_RUN_DIR = Path("/run/systemd/system")


def run_command(*argv: str) -> tuple[int, str] | None:
    """(exit code, stdout stripped), or None when the program is missing or hangs."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.returncode, done.stdout.strip()


def systemd_running() -> bool:
    return SYSTEMD_RUN_DIR.is_dir()


def check_config(path: Path) -> tuple[CheckResult, AgentConfig | None]:
    name = "config"
    if not path.exists():  # nothing to fix in a file that is not there: say what to do
        return failed(name, f"{path}: no such file",
                      f"write one (edge-agent config example > {path}), or name yours with "
                      "--config FILE"), None
    try:
        config = load_config(path)
    except ConfigError as exc:
        first = exc.problems[0] if exc.problems else "invalid"
        more = f" (+{len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        return failed(name, f"{path}: {first}{more}",
                      f"fix the file: edge-agent config check {path}"), None
    return passed(name, f"{path} valid: site {config.site}, line {config.line}, "
                        f"{len(config.devices)} devices"), config


def check_profiles(config: AgentConfig) -> list[CheckResult]:
    from edge_agent.devices.profiles import ProfileError, load_profile

    results = []
    for device, settings in config.devices.items():
        name = f"device {device}: profile"
        try:
            profile = load_profile(settings.profile)
        except ProfileError as exc:
            results.append(failed(name, str(exc), "see the names with: edge-agent profiles list"))
            continue
        results.append(passed(name, f"{profile.name} ({profile.kind}) from {profile.source}"))
    return results


def check_state_dir(config: AgentConfig) -> list[CheckResult]:
    """Writable, and with room for the outbox's whole disk budget."""
    state_dir = config.state_dir
    name = "state directory"
    if not state_dir.is_dir():
        return [failed(name, f"{state_dir} does not exist",
                       f"create it: install -d -o {SERVICE_NAME} -g {SERVICE_NAME} {state_dir}")]
    try:
        with tempfile.NamedTemporaryFile(dir=state_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        return [failed(name, f"{state_dir} not writable: {exc.strerror or exc}",
                       f"chown {SERVICE_NAME}: {state_dir} (StateDirectory= in the unit)")]
    results = [passed(name, f"{state_dir} writable")]
    usage = shutil.disk_usage(state_dir)
    budget = int(config.outbox.disk_budget_mb * MIB)
    free = f"{usage.free // MIB} MB free, outbox budget {budget // MIB} MB"
    if usage.free < budget:
        results.append(failed("free space", free, "free disk space or lower outbox.disk_budget_mb"))
    elif usage.free < 2 * budget:  # the journal and updates need room too
        results.append(warned("free space", free, "little headroom: free some disk space"))
    else:
        results.append(passed("free space", free))
    return results


def check_clock() -> CheckResult:
    name = "clock synchronised"
    answer = run_command("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    if answer is None or answer[0] != 0:
        return warned(name, "not checked (timedatectl unavailable or no systemd)",
                      "check NTP by hand: chronyc tracking (cutoffs depend on the clock)")
    if answer[1] == "yes":
        return passed(name, "NTP synchronised")
    return failed(name, "NTP not synchronised",
                  "timedatectl set-ntp true; check the NTP server is reachable")


def check_service() -> list[CheckResult]:
    if not systemd_running():
        return [warned("service", "not checked (no systemd)",
                       f"on the line's computer: systemctl status {SERVICE_NAME}")]
    results = []
    enabled = run_command("systemctl", "is-enabled", SERVICE_NAME)
    state = enabled[1] if enabled else "unknown"
    if state == "enabled":
        results.append(passed("service enabled", state))
    else:
        results.append(failed("service enabled", state or "not installed",
                              f"systemctl enable --now {SERVICE_NAME}"))
    active = run_command("systemctl", "is-active", SERVICE_NAME)
    state = active[1] if active else "unknown"
    if state == "active":
        results.append(passed("service running", state))
    else:
        results.append(failed("service running", state or "unknown",
                              f"journalctl -u {SERVICE_NAME} -n 50; systemctl restart "
                              f"{SERVICE_NAME}"))
    return results

