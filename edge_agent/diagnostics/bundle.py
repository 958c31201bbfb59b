"""The support bundle: one .tar.gz a technician sends to the central team.

Contents (each file is written even when its source is unavailable; manifest.json says why):
    manifest.json  when, which host, versions, what each file holds, what could not be collected
    config.json    the config file's settings with every secret replaced by "<redacted>"
    status.json    the running agent's status: devices, lanes, counters, outbox, link, decisions
    outbox.json    outbox statistics read from the state directory (also when the agent is down)
    doctor.json    `edge-agent doctor`'s results
    journal.jsonl  the service's recent log lines from the journal

Secrets: password files are never opened; config values whose key names a secret are replaced
before anything is written.
"""

from __future__ import annotations

import errno
import io
import json
import os
import platform
import socket
import tarfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from edge_agent.diagnostics.host_checks import SERVICE_NAME, run_command

# A day of a busy line's log is a few thousand lines; enough to see what led up to a fault.
JOURNAL_LINES = 2000
REDACTED = "<redacted>"
# Config keys whose values are secrets (matched as words in the key's name).
SECRET_WORDS = ("password", "passwd", "secret", "token", "key")
PACKAGES = ("edge-agent", "paho-mqtt", "pyserial", "pydantic", "structlog")


def redact(value: Any, key: str = "") -> Any:
    """A copy of a parsed config with every secret-looking value replaced."""
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, key) for item in value]
    words = key.lower().replace("-", "_").split("_")
    if any(word in SECRET_WORDS for word in words):
        return REDACTED
    return value


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "os": platform.platform()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def collect(config_path: Path, *, run_doctor: bool = True,
            status_socket: Path | None = None) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of the bundle (name -> bytes) and the manifest's notes."""
    from edge_agent.config import load_config
    from edge_agent.errors import ConfigError
    from edge_agent.validation import read_toml

    notes: dict[str, str] = {}
    files: dict[str, bytes] = {}
    try:
        files["config.json"] = _json(redact(read_toml(config_path)))
    except ValueError as exc:
        notes["config.json"] = f"{config_path}: {exc}"  # the raw text could hold secrets
    config = None
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        notes["config"] = str(exc)

    from edge_agent.diagnostics.doctor import agent_status

    errors: list[str] = []
    status = agent_status(config, status_socket, errors)
    if status is not None:
        files["status.json"] = _json(status)
    else:
        notes["status.json"] = "; ".join(errors)
    if config is not None:
        from edge_agent.sync.outbox_store import read_only_stats

        files["outbox.json"] = _json(read_only_stats(config.state_dir))
    if run_doctor:
        from edge_agent.diagnostics.doctor import run_checks

        files["doctor.json"] = _json([r.to_dict() for r in run_checks(
            config_path, status_socket=status_socket)])
    journal = run_command("journalctl", "-u", SERVICE_NAME, "-n", str(JOURNAL_LINES),
                          "--no-pager", "-o", "json")
    if journal is None:
        notes["journal.jsonl"] = "journalctl not available on this machine"
    elif journal[0] != 0 or not journal[1]:
        notes["journal.jsonl"] = f"no journal entries for {SERVICE_NAME} (no systemd journal?)"
    else:
        files["journal.jsonl"] = journal[1].encode() + b"\n"
    return files, notes


def write_bundle(out: Path, config_path: Path, *, run_doctor: bool = True,
                 status_socket: Path | None = None) -> dict[str, Any]:
    """Collect and write the archive; returns the manifest."""
    files, notes = collect(config_path, run_doctor=run_doctor, status_socket=status_socket)
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "config_file": str(config_path),
        "versions": versions(),
        "files": sorted(files),
        "not_collected": notes,
    }
    files["manifest.json"] = _json(manifest)
    stem = out.name.removesuffix(".tar.gz")
    handle = _create_private(out)
    try:
        with handle, tarfile.open(fileobj=handle, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(f"{stem}/{name}")
                info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
                archive.addfile(info, io.BytesIO(data))
    except BaseException:
        out.unlink(missing_ok=True)  # ours (O_EXCL made it): no half archive is left behind
        raise
    return manifest


def _create_private(path: Path) -> io.BufferedWriter:
    """A new file only the caller can read. O_EXCL: never an existing file, and never through
    a symlink (O_EXCL refuses any link at the path, O_NOFOLLOW says so twice): a name planted
    in a shared directory cannot redirect the bundle, which holds the line's configuration."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise OSError(errno.EEXIST, "already exists (or is a link): not overwritten") from None
    return os.fdopen(descriptor, "wb")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, default=str).encode() + b"\n"
