"""Checks of each configured device port: present, readable by the service, free, answering.

The order matters: a port that is missing cannot be busy, and a busy port cannot be opened to
see whether the device answers. When the running agent holds a port (its status socket says the
device is connected), that is the normal state: the agent's own view stands in for the probe.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import time
from pathlib import Path
from typing import Any

from edge_agent.config import DeviceConfig
from edge_agent.diagnostics.network_checks import CAN_LISTEN, REACHABLE, check_network_device
from edge_agent.diagnostics.results import CheckResult, failed, passed, warned
from edge_agent.diagnostics.usb_serial_checks import check_latency_timer

# Long enough for a polled scale (a few polls) or continuous output (many frames); a scanner
# sends only when it reads, so silence from it is a warning, not a failure.
ANSWER_WAIT_S = 2.0
HUB_STEP_S = 0.05
SERIAL_GROUP = "dialout"
# The check after which a device is probed for frames: its port is free, or its link works.
PROBE_AFTER = ("port free", REACHABLE, CAN_LISTEN)


def check_ports(devices: dict[str, DeviceConfig], service_user: str,
                agent_devices: dict[str, Any] | None = None) -> list[CheckResult]:
    """Every device's checks in config order. The free ports are probed for frames together,
    in one hub, so a line with silent scanners costs ANSWER_WAIT_S once, not once per device."""
    per_device = {name: check_port(name, device, service_user, agent_devices)
                  for name, device in devices.items()}
    free = {name: devices[name] for name, results in per_device.items()
            if results[-1].name.endswith(PROBE_AFTER) and results[-1].status == "pass"}
    for name, result in check_answering(free).items():
        per_device[name].append(result)
    return [result for results in per_device.values() for result in results]


def check_port(name: str, device: DeviceConfig, service_user: str,
               agent_devices: dict[str, Any] | None = None) -> list[CheckResult]:
    """One device's static checks, stopping at the first that makes the rest meaningless; the
    running agent's view stands in for the probe of a port it holds. A device on the network
    has its own checks (reachable, or free to listen on)."""
    agent_view = (agent_devices or {}).get(name)
    if device.transport == "tcp":
        link = check_network_device(name, device, agent_view)
        return [link] if agent_view is None else [link, _agent_answering(name, agent_view)]
    present = check_present(name, str(device.port))
    results = [present]
    if present.status != "pass":
        return results
    results.append(check_access(name, str(device.port), service_user))
    latency = check_latency_timer(name, str(device.port))
    if latency is not None:
        results.append(latency)
    busy = check_free(name, str(device.port), agent_view)
    results.append(busy)
    if agent_view is not None:
        results.append(_agent_answering(name, agent_view))
    return results


def check_present(name: str, path: str) -> CheckResult:
    check = f"device {name}: port present"
    resolved = os.path.realpath(path)
    if not os.path.exists(resolved):
        return failed(check, f"{path} not found",
                      "plug the adapter in, check the cable; list ports: edge-agent diag ports")
    shown = path if resolved == path else f"{path} -> {resolved}"
    if not stat.S_ISCHR(os.stat(resolved).st_mode):
        return failed(check, f"{shown} is not a character device",
                      "the config must name a serial device (/dev/serial/by-id/...)")
    return passed(check, shown)


def check_access(name: str, path: str, service_user: str) -> CheckResult:
    """Can the service user read and write the node? Checked from the node's owner, group and
    mode, because the doctor itself usually runs as root or a technician, not as the service."""
    check = f"device {name}: readable by {service_user}"
    info = os.stat(os.path.realpath(path))
    group = _group_name(info.st_gid)
    mode = stat.filemode(info.st_mode)
    found = f"{mode} owner {_user_name(info.st_uid)} group {group}"
    try:
        user = pwd.getpwnam(service_user)
    except KeyError:
        return warned(check, f"user {service_user} does not exist; node {found}",
                      "create the service user: systemd-sysusers (docs/INSTALL.md)")
    rw = os.R_OK | os.W_OK
    if user.pw_uid == 0 or _allows(info, rw, "other"):
        return passed(check, found)
    if info.st_uid == user.pw_uid and _allows(info, rw, "user"):
        return passed(check, found)
    in_group = info.st_gid == user.pw_gid or service_user in _members(info.st_gid)
    if in_group and _allows(info, rw, "group"):
        return passed(check, found)
    if in_group:
        return failed(check, f"group {group} may not read and write: {found}",
                      "install the udev rule (systemd/99-edge-agent-serial.rules): MODE=0660")
    return failed(check, f"{service_user} is not in group {group}: {found}",
                  f"usermod -aG {SERIAL_GROUP} {service_user}, then restart the service")


def check_free(name: str, path: str, agent_view: dict[str, Any] | None) -> CheckResult:
    """Open the port exclusively, as the agent does; EBUSY means someone else holds it."""
    import serial

    check = f"device {name}: port free"
    if agent_view is not None and agent_view.get("state") == "connected":
        return passed(check, "held by the running agent (connected)")
    try:
        serial.Serial(os.path.realpath(path), exclusive=True, timeout=0).close()
    except (OSError, serial.SerialException) as exc:
        holders = processes_holding(os.path.realpath(path))
        who = ", ".join(f"{pid} {cmd}" for pid, cmd in holders) or "unknown process"
        from edge_agent.devices.open_errors import classify_open_error

        text = str(exc)
        if classify_open_error(exc).busy:
            if any("edge_agent run" in cmd or "edge-agent run" in cmd for _, cmd in holders):
                return failed(check, f"held by the agent ({who}), whose status socket did "
                              "not answer", "pass its socket: edge-agent doctor --socket PATH")
            return failed(check, f"busy, held by {who}",
                          "stop the other program (diag watch, minicom, a second agent)")
        return failed(check, f"cannot open: {text}", "check the adapter; see dmesg")
    return passed(check, "not held by another process")


def check_answering(devices: dict[str, DeviceConfig]) -> dict[str, CheckResult]:
    """Open the ports briefly with their profiles (polling those that poll) and count frames
    that decode against frames that do not, for ANSWER_WAIT_S or until each has answered."""
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.ports import port_for_device
    from edge_agent.devices.profiles import ProfileError, load_profile

    results: dict[str, CheckResult] = {}
    profiles = {}
    for name, device in devices.items():
        try:
            profiles[name] = load_profile(device.profile)
        except ProfileError:
            results[name] = failed(f"device {name}: answering", "not checked: profile not found",
                                   "fix the profile name first")
    good = dict.fromkeys(profiles, 0)
    bad = dict.fromkeys(profiles, 0)
    deadline = time.monotonic() + ANSWER_WAIT_S
    with DeviceHub() as hub:
        for name, profile in profiles.items():
            hub.add(port_for_device(name, devices[name], profile))
        while time.monotonic() < deadline and not all(good.values()):
            for name, message in hub.poll(HUB_STEP_S):
                if message.kind == "error":
                    bad[name] += 1
                else:
                    good[name] += 1
        errors = {name: port.last_error for name, port in hub.ports.items()}
        unlinked = {name for name, port in hub.ports.items() if not port.connected}
    for name, profile in profiles.items():
        if devices[name].role == "server" and name in unlinked and not errors[name]:
            results[name] = warned(
                f"device {name}: answering", f"no device connected in {ANSWER_WAIT_S:g} s",
                "it connects on its own schedule: check its host/port settings point here")
            continue
        results[name] = _verdict(name, profile, good[name], bad[name], errors[name])
    return results


def _verdict(name: str, profile: Any, good: int, bad: int, error: str | None) -> CheckResult:
    check = f"device {name}: answering"
    if good:
        return passed(check, f"frames decoded with {profile.name} ({good} good, {bad} bad)")
    if bad:
        return failed(check, f"{bad} frames that {profile.name} cannot decode",
                      "wrong profile, baud rate or parity? capture: edge-agent diag capture")
    if error:
        return failed(check, f"cannot open: {error}", "check the adapter; see dmesg")
    if profile.polling.mode in ("poll", "continuous"):
        return failed(check, f"no frames in {ANSWER_WAIT_S:g} s from a polled/continuous device",
                      "check power, cable, baud rate; edge-agent diag capture --port ...")
    return warned(check, f"no frames in {ANSWER_WAIT_S:g} s (a {profile.kind} sends on events)",
                  "present a barcode or parcel, then: edge-agent diag watch --config FILE")


def _agent_answering(name: str, view: dict[str, Any]) -> CheckResult:
    check = f"device {name}: answering"
    state = view.get("state")
    last = view.get("last_frame_at") or "never"
    if state == "connected":
        return passed(check, f"agent reports connected, last frame {last}")
    return failed(check, f"agent reports {state}: {view.get('last_error') or 'no detail'}",
                  "see: edge-agent diag status")


def processes_holding(device: str) -> list[tuple[int, str]]:
    """(pid, command) of processes with `device` open, from /proc (ours only unless root)."""
    holders = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        if any(_link_of(fd) == device for fd in fds):
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace").strip()
            except OSError:
                command = ""
            holders.append((int(proc.name), command[:60]))
    return holders


def _link_of(fd: Path) -> str | None:
    """Where one fd points; None when it was closed meanwhile (one closing fd must not hide
    the rest of that process's fds, the holder's among them)."""
    try:
        return os.readlink(fd)
    except OSError:
        return None


def _allows(info: os.stat_result, wanted: int, who: str) -> bool:
    bits = {"user": (stat.S_IRUSR, stat.S_IWUSR), "group": (stat.S_IRGRP, stat.S_IWGRP),
            "other": (stat.S_IROTH, stat.S_IWOTH)}[who]
    need = [bits[0]] if wanted & os.R_OK else []
    need += [bits[1]] if wanted & os.W_OK else []
    return all(info.st_mode & bit for bit in need)


def _members(gid: int) -> list[str]:
    try:
        return list(grp.getgrgid(gid).gr_mem)
    except KeyError:
        return []


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
