"""`edge-agent diag status`: ask the running agent for its state over its status socket.

The `diag` group lives in diag_cmd.py and calls `add_status_parser(commands)`. Output fits an
80-column terminal: a header (version, site, line, uptime, rules), then devices, lanes,
counters, outbox, broker link and the last decisions: whatever keys the agent's snapshot holds
(the document is described in edge_agent.runtime.status_server). `--json` prints the document.
Exit codes: 0 answered, 1 no agent answering (or it answered with an error), 2 bad config file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Where the shipped unit's agent listens (RuntimeDirectory=edge-agent; docs/INSTALL.md).
DEFAULT_STATUS_SOCKET = Path("/run/edge-agent/status.sock")
# Technicians' terminals and the journal's pager: one screen wide.
WIDTH = 80
NAME_WIDTH = 12
# The sections rendered in this order; any other top-level key follows them.
SECTION_ORDER = ("devices", "lanes", "counters", "outbox", "mqtt", "last_decisions")
DECISION_COLUMNS = ("at", "parcel", "bin", "reason", "latency_ms")

EXIT_OK = 0
EXIT_FAILED = 1
# The agent refreshes its snapshot a few times a second; once a second is readable by eye.
FOLLOW_INTERVAL_S = 1.0
# On a terminal: cursor home, then clear to the end of the screen, so a refresh redraws in place
# without the flicker of clearing first.
CURSOR_HOME = "\x1b[H"
CLEAR_TO_END = "\x1b[J"


def add_status_parser(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = commands.add_parser(
        "status", help="show the running agent's devices, lanes, counters, outbox and link",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, metavar="PATH",
                       help=f"the agent's status socket (default {DEFAULT_STATUS_SOCKET})")
    where.add_argument("--config", type=Path, metavar="FILE",
                       help="find the socket from the agent's config file (status.socket_path)")
    parser.add_argument("--json", action="store_true", help="print the status document as JSON")
    parser.add_argument("--timeout", type=float, default=2.0, metavar="SECONDS",
                        help="how long to wait for the agent's answer (default 2)")
    parser.add_argument("--follow", action="store_true",
                        help="refresh until Ctrl-C (in place on a terminal)")
    parser.add_argument("--interval", type=float, default=FOLLOW_INTERVAL_S, metavar="SECONDS",
                        help=f"--follow: time between refreshes (default {FOLLOW_INTERVAL_S:g})")
    parser.add_argument("--count", type=int, metavar="N", help="--follow: stop after N refreshes")
    parser.set_defaults(handler=run_status)
    return parser


def status_socket_path(args: argparse.Namespace) -> Path:
    if getattr(args, "socket", None) is not None:
        return args.socket
    if getattr(args, "config", None) is not None:
        from edge_agent.config import load_config  # raises ConfigError: the CLI exits 2

        return load_config(args.config).status_socket
    return DEFAULT_STATUS_SOCKET


def run_status(args: argparse.Namespace) -> int:
    from edge_agent.runtime.status_server import StatusError, query_status

    path = status_socket_path(args)
    if getattr(args, "follow", False):
        try:
            return follow_status(path, args)
        except KeyboardInterrupt:  # Ctrl-C is how a technician ends --follow
            return EXIT_OK
    try:
        document = query_status(path, timeout_s=getattr(args, "timeout", 2.0))
    except StatusError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    if getattr(args, "json", False):
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print("\n".join(render_status(document)))
    return EXIT_OK


def follow_status(path: Path, args: argparse.Namespace) -> int:
    """Print the status every --interval: redrawn in place on a terminal, otherwise as plain
    blocks one after another (for a log file or `| less`). An agent that stops answering is
    shown as such and asked again at the next refresh."""
    import time
    from datetime import datetime

    from edge_agent.runtime.status_server import StatusError, query_status

    in_place = sys.stdout.isatty()
    code = EXIT_OK
    shown = 0
    while args.count is None or shown < args.count:
        if shown:
            time.sleep(args.interval)  # the refresh period itself, not a wait for readiness
        try:
            document = query_status(path, timeout_s=args.timeout)
            code = EXIT_OK
        except StatusError as exc:
            document, code = {"error": str(exc)}, EXIT_FAILED
        shown += 1
        if getattr(args, "json", False):  # one JSON document per line, for a script to follow
            print(json.dumps(document, sort_keys=True), flush=True)
            continue
        lines = (render_status(document) if code == EXIT_OK
                 else _wrap("", [document["error"]], separator=" "))
        stamp = f"-- {datetime.now():%H:%M:%S} (every {args.interval:g} s, Ctrl-C to stop) --"
        if in_place:
            print(CURSOR_HOME + "\n".join([stamp, *lines]) + "\n" + CLEAR_TO_END, end="",
                  flush=True)
        else:
            print("\n".join([stamp, *lines, ""]), flush=True)
    return code


def render_status(document: Mapping[str, Any]) -> list[str]:
    """The document as lines of at most WIDTH characters."""
    lines = _render_header(document.get("agent") or {})
    for key in [*SECTION_ORDER, *sorted(set(document) - set(SECTION_ORDER) - {"agent"})]:
        if key not in document:
            continue
        value = document[key]
        lines.append("")
        if key == "devices" and isinstance(value, Mapping):
            lines += _render_named_rows("Devices", value, lead=("state",))
        elif key == "lanes" and isinstance(value, Mapping):
            lines += _render_named_rows("Lanes", value, lead=("state", "bin", "count"))
        elif key == "last_decisions" and isinstance(value, list):
            lines += _render_decisions(value)
        elif isinstance(value, Mapping):
            lines += _wrap(f"{_title(key):<{NAME_WIDTH - 1}} ", _pairs(value))
        else:
            lines += _wrap(f"{_title(key):<{NAME_WIDTH - 1}} ", [_format_value(value)])
    return [_clip(line) for line in lines]


def _render_header(agent: Mapping[str, Any]) -> list[str]:
    first = [f"edge-agent {agent.get('version', '?')}"]
    first += [f"{key} {agent[key]}" for key in ("site", "line", "pid") if key in agent]
    second = []
    if "uptime_s" in agent:
        since = f" (since {agent['started_at']})" if "started_at" in agent else ""
        second.append(f"up {_duration(agent['uptime_s'])}{since}")
    if "rules_version" in agent:
        second.append(f"rules {agent['rules_version']}")
    shown = {"version", "site", "line", "pid", "uptime_s", "started_at", "rules_version"}
    second += _pairs({key: value for key, value in agent.items() if key not in shown})
    return _wrap("", first, separator="  ") + _wrap("  ", second, separator="  ")


def _render_named_rows(title: str, rows: Mapping[str, Any], lead: tuple[str, ...]) -> list[str]:
    lines = [title]
    if not rows:
        return [*lines, "  (none)"]
    for name, fields in rows.items():
        if not isinstance(fields, Mapping):
            lines.append(f"  {name:<{NAME_WIDTH}}{_format_value(fields)}")
            continue
        columns = [f"{_format_value(fields[key]):<10}" for key in lead if key in fields]
        head = f"  {name:<{NAME_WIDTH}}" + " ".join(columns)
        rest = _pairs({key: value for key, value in fields.items() if key not in lead})
        lines += _wrap(head.rstrip() + "  ", rest, indent=" " * (4 + NAME_WIDTH))
    return lines


def _render_decisions(decisions: list[Any]) -> list[str]:
    lines = ["Last decisions"]
    if not decisions:
        return [*lines, "  (none yet)"]
    for decision in decisions:
        if not isinstance(decision, Mapping):
            lines.append(f"  {_format_value(decision)}")
            continue
        if "lane" in decision:  # the agent's own shape: one readable line per parcel
            lines.append(_decision_line(decision))
            continue
        known = [_format_value(decision[key], key) for key in DECISION_COLUMNS if key in decision]
        rest = _pairs({k: v for k, v in decision.items() if k not in DECISION_COLUMNS})
        lines.append("  " + "  ".join([*known, *rest]))
    return lines


def _decision_line(decision: Mapping[str, Any]) -> str:
    """`  11:12:13.456  ZHUHAI     RB123456785GB            1.42 ms  reasons...`"""
    at = str(decision.get("at", ""))
    clock = at[11:23] if len(at) >= 23 else at
    barcode = decision.get("barcode") or "(no read)"
    barcode = barcode.replace("\x1d", "<GS>")
    if len(barcode) > 24:
        barcode = barcode[:23] + "…"
    latency = decision.get("latency_ms")
    latency_text = f"{latency:>6.2f} ms" if isinstance(latency, int | float) else " " * 9
    reasons = ",".join(decision.get("reasons") or [])
    return f"  {clock:<12}  {decision.get('lane', '?'):<10} {barcode:<24} {latency_text}  {reasons}"


def _pairs(fields: Mapping[str, Any]) -> list[str]:
    """`{"oldest_age_s": 3.25}` -> ["oldest age 3.25 s"]: keys with unit suffixes read as units."""
    parts = []
    for key, value in fields.items():
        label, unit = _label_and_unit(key)
        parts.append(f"{label} {_format_value(value)}{unit}")
    return parts


def _label_and_unit(key: str) -> tuple[str, str]:
    for suffix, unit in (("_ms", " ms"), ("_s", " s"), ("_bytes", " B")):
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace("_", " "), unit
    return key.replace("_", " "), ""


def _format_value(value: Any, key: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return f"{text} ms" if key.endswith("_ms") else text
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_format_value(item) for item in value)
    if isinstance(value, int) and key.endswith("_ms"):
        return f"{value} ms"
    return str(value)


def _duration(seconds: Any) -> str:
    try:
        remaining = int(seconds)
    except (TypeError, ValueError):
        return str(seconds)
    days, remaining = divmod(remaining, 86400)
    hours, remaining = divmod(remaining, 3600)
    minutes, secs = divmod(remaining, 60)
    parts = [f"{days}d"] if days else []
    if days or hours:
        parts.append(f"{hours}h")
    parts += [f"{minutes}m", f"{secs}s"] if not days else [f"{minutes}m"]
    return " ".join(parts)


def _title(key: str) -> str:
    special = {"mqtt": "MQTT"}
    return special.get(key, key.replace("_", " ").capitalize())


def _wrap(head: str, parts: Iterable[str], *, indent: str | None = None,
          separator: str = " · ") -> list[str]:
    """Join parts after head, continuing on indented lines so none passes WIDTH."""
    indent = " " * len(head) if indent is None else indent
    lines: list[str] = []
    current = head
    started = False
    for part in parts:
        candidate = current + (separator if started else "") + part
        if started and len(candidate) > WIDTH:
            lines.append(current)
            current = indent + part
        else:
            current = candidate
        started = True
    if current.strip():
        lines.append(current)
    return lines


def _clip(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"
