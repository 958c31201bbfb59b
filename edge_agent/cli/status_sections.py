"""The parts of the status screen: one function per section of the agent's status document.

status_view.py puts them together (and is the only caller). Every string from the document
passes through `terminal_safe` and goes into rich as `Text`, never as markup: see there.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from edge_agent.safe_text import terminal_safe
from edge_agent.units import MIB

# The sections laid out by this view; any other top-level key is shown generically.
KNOWN_SECTIONS = ("agent", "devices", "lanes", "counters", "exceptions_by_reason", "latency",
                  "outbox", "mqtt", "in_flight", "last_decisions", "holds", "outcomes")
# The outcome columns (edge_agent.runtime.outcomes), in the order a sorter's parcel ends;
# refused and not_commanded share OTHER.
OUTCOME_COLUMNS = (("sorted", "SORTED"), ("too_late", "LATE"), ("bin_full", "FULL"),
                   ("bin_disabled", "DISABL"), ("bin_jammed", "JAM"),
                   ("recirculated", "RECIRC"), ("tracking_lost", "LOST"),
                   ("no_confirmation", "NO CONF"))
DEVICE_COUNTERS = (("frames", "FRAMES"), ("decode_errors", "DECODE ERR"),
                   ("io_errors", "I/O ERR"), ("garbage_bytes", "GARBAGE"),
                   ("reconnects", "RECONN"))
PERCENTILES = (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"), ("max_us", "max"))
# Width under which the lanes and the counters stack instead of standing side by side.
SIDE_BY_SIDE_MIN_WIDTH = 72
# The decisions' fixed columns (time, lane, latency and the gaps) take this much; of the rest,
# the reasons keep REASONS_WIDTH (weight_mismatch) and the barcode gets what is left: 34
# characters at 80 columns (a GS1 string with its AIs runs to ~40: cut with an ellipsis).
DECISION_FIXED_WIDTH = 31
REASONS_WIDTH = 15
# A cell longer than this (a path, an error) is cut: a table of one long cell helps nobody.
MAX_CELL_CHARS = 48


def safe(value: Any) -> str:
    return terminal_safe(format_value(value))


def format_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, Mapping):
        if "value" in value and "limit" in value:  # a measure and its alarm threshold
            return f"{format_value(value['value'])} (≤{format_value(value['limit'])})"
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item) for item in value) or "none"
    return str(value)


def cell(value: Any, limit: int = MAX_CELL_CHARS) -> Text:
    text = safe(value)
    return Text(text if len(text) <= limit else text[: limit - 1] + "…")


def site_zone(document: Mapping[str, Any], fallback: str | None = None) -> tzinfo | None:
    """The site's zone from the snapshot (else `fallback`, e.g. the config's); None: local."""
    agent = document.get("agent") if isinstance(document.get("agent"), Mapping) else {}
    for name in (agent.get("timezone"), fallback):
        if isinstance(name, str):
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return None


def local_time(value: Any, zone: tzinfo | None, *, with_date: bool = False) -> str:
    """An ISO time from the agent, in the site's zone: `17:29:55.099`."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return safe(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(zone)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S.%f")
    return text if with_date else text[:-3]


def label(key: str) -> tuple[str, str]:
    """`oldest_age_s` -> ("oldest age", " s"): unit suffixes read as units."""
    for suffix, unit in (("_ms", " ms"), ("_us", " µs"), ("_s", " s"), ("_bytes", " B")):
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace("_", " "), unit
    return key.replace("_", " "), ""


def pairs(fields: Mapping[str, Any]) -> Text:
    """`key value · key value`, wrapped by rich at the terminal's width, never cut."""
    text = Text()
    for number, (key, value) in enumerate(fields.items()):
        name, unit = label(str(key))
        if number:
            text.append(" · ", style="dim")
        text.append(terminal_safe(name), style="bold")
        text.append(f" {safe(value)}{unit}")
    return text


def plain_table() -> Table:
    """No borders and no rule under the header (a bold underlined header row instead): at
    80x24 every line is a line of the last decisions."""
    return Table(box=None, pad_edge=False, padding=(0, 1), header_style="bold underline",
                 show_edge=False)


def titled(*rows: tuple[str, Text]) -> Table:
    """`Title     body` rows; a long body wraps under itself, not under the title."""
    grid = Table.grid(padding=(0, 1))
    # Titles line up at 9 columns; a longer one (a section added later) keeps its full name.
    grid.add_column(width=max([9, *(len(title) for title, _ in rows)]), no_wrap=True,
                    style="bold cyan")
    grid.add_column(ratio=1)
    for title, body in rows:
        grid.add_row(Text(title), body)
    return grid


# -- sections ---------------------------------------------------------------------------------

def header(document: Mapping[str, Any], zone: tzinfo | None, footer: str | None) -> Text:
    """Two lines: who (version, site/line, pid, rules), then since when, in which zone."""
    agent = document.get("agent") if isinstance(document.get("agent"), Mapping) else {}
    text = Text(f"edge-agent {safe(agent.get('version', '?'))}", style="bold")
    if "site" in agent or "line" in agent:
        text.append(f"  {safe(agent.get('site', '?'))}/{safe(agent.get('line', '?'))}",
                    style="bold")
    if "pid" in agent:
        text.append(f"  pid {safe(agent['pid'])}")
    if "rules_version" in agent:
        text.append(f"  rules {safe(agent['rules_version'])}")
    if agent.get("stopping"):
        text.append("  STOPPING", style="bold red")
    second = []
    if "uptime_s" in agent:
        since = ""
        if "started_at" in agent:
            since = f" since {local_time(agent['started_at'], zone, with_date=True)}"
        second.append(f"up {duration(agent['uptime_s'])}{since}")
    second.append(f"times {getattr(zone, 'key', None) or 'local'}")
    if footer:
        second.append(footer)
    text.append("\n" + " · ".join(terminal_safe(part) for part in second), style="dim")
    return text


def devices_table(devices: Mapping[str, Any], zone: tzinfo | None) -> Group:
    """One row per device with its error counters; a device's last error on a line below."""
    table = plain_table()
    table.add_column("DEVICE", no_wrap=True, max_width=16)
    table.add_column("STATE", no_wrap=True, min_width=9)
    for _, title in DEVICE_COUNTERS:
        table.add_column(title, justify="right", no_wrap=True, min_width=len(title))
    table.add_column("LAST FRAME", no_wrap=True, min_width=10)
    errors: list[Text] = []
    for name, fields in devices.items():
        if not isinstance(fields, Mapping):
            table.add_row(cell(name), cell(fields))
            continue
        counters = fields.get("counters") if isinstance(fields.get("counters"), Mapping) else {}
        state = safe(fields.get("state"))
        last = fields.get("last_frame_at")
        table.add_row(
            cell(name, 16), Text(state, style="green" if state == "connected" else "bold red"),
            *[cell(counters.get(key, fields.get(key))) for key, _ in DEVICE_COUNTERS],
            Text(local_time(last, zone)[:8] if last else "-"),
        )
        if fields.get("last_error"):
            errors.append(Text.assemble(
                (f"  {safe(name)}: ", "bold red"), safe(fields["last_error"])))
        elif fields.get("role") == "server" and state != "connected":
            errors.append(Text.assemble(
                (f"  {safe(name)}: ", "bold"),
                f"listening on {safe(fields.get('path'))}, no device connected yet"))
    return Group(table, *errors)


def lanes_table(lanes: Mapping[str, Any]) -> Table:
    table = plain_table()
    table.add_column("LANE", no_wrap=True)
    table.add_column("BIN", justify="right")
    table.add_column("STATE", no_wrap=True)
    table.add_column("PARCELS", justify="right")
    for name, fields in lanes.items():
        fields = fields if isinstance(fields, Mapping) else {"state": fields}
        state = safe(fields.get("state"))
        table.add_row(cell(name, 16), cell(fields.get("bin")),
                      Text(state, style="" if state == "open" else "bold yellow"),
                      cell(fields.get("count")))
    return table


def outcomes_table(outcomes: Mapping[str, Any]) -> Group:
    """Per lane, how its parcels ended since the start; then the waiting and the rate alarms."""
    table = plain_table()
    table.add_column("OUTCOME", no_wrap=True)
    for _, title in OUTCOME_COLUMNS:
        table.add_column(title, justify="right")
    table.add_column("OTHER", justify="right")
    by_lane = outcomes.get("by_lane")
    for lane, counts in (by_lane.items() if isinstance(by_lane, Mapping) else ()):
        counts = counts if isinstance(counts, Mapping) else {}
        known = {key for key, _ in OUTCOME_COLUMNS}
        other = sum(v for k, v in counts.items() if k not in known and isinstance(v, int))
        table.add_row(cell(lane, 16), *[cell(counts.get(key, 0)) for key, _ in OUTCOME_COLUMNS],
                      cell(other))
    rates = outcomes.get("rates")
    active = rates.get("alarms_active") if isinstance(rates, Mapping) else None
    summary = {"waiting": outcomes.get("waiting"),
               "confirmations_late": outcomes.get("confirmations_late", 0),
               "confirmations_unknown": outcomes.get("confirmations_unknown", 0),
               "rate_alarms": ", ".join(map(str, active)) if active else "none"}
    return Group(table, titled(("Outcomes", pairs(summary))))


def latency_line(latency: Mapping[str, Any], width: int) -> Table:
    """p50 < p99 < p99.9 < max, in ms, over the parcels the agent's window holds."""
    parts = [f"{name} {latency[key] / 1000:.2f}" for key, name in PERCENTILES
             if isinstance(latency.get(key), int | float)]
    if not parts:
        return titled(("Latency", Text("no parcels yet")))
    body = Text(" · ".join(parts) + " ms")
    what = "scan → lane command, " if width >= 100 else ""
    body.append(f" ({what}last {safe(latency.get('count'))} parcels)", style="dim")
    return titled(("Latency", body))


def outbox_line(outbox: Mapping[str, Any]) -> Table:
    shown = dict(outbox)
    used, budget = shown.pop("bytes_on_disk", None), shown.pop("budget_bytes", None)
    body = Text()
    if isinstance(used, int | float) and isinstance(budget, int | float) and budget:
        body.append(f"disk {used / MIB:.1f} of {budget / MIB:.0f} MiB · ")
    evicted = shown.pop("evicted", None)
    body.append_text(pairs(shown))
    # Always shown: an empty eviction record is the good news ("none"), not a blank.
    body.append(" · ", style="dim")
    body.append("evicted", style="bold")
    body.append(f" {safe(evicted) if evicted else 'none'}")
    return titled(("Outbox", body))


def holds_line(holds: Mapping[str, Any], zone: tzinfo | None) -> Table:
    """How many of central's holds apply now, and the newest: what it names, why, until when."""
    body = Text(f"{safe(holds.get('active'))} active")
    newest = holds.get("newest")
    if isinstance(newest, Mapping):
        named = (f"barcode {shown_barcode(newest.get('barcode'))}" if newest.get("barcode")
                 else f"order {safe(newest.get('order_id'))}")
        body.append(" · newest ", style="dim")
        body.append(f"{safe(newest.get('hold_id'))}", style="bold")
        body.append(f" {named}: {safe(newest.get('reason'))}, until "
                    f"{local_time(newest.get('expires_at'), zone, with_date=True)}")
    return titled(("Holds", body))


def decisions_table(decisions: list[Any], zone: tzinfo | None, rows: int | None,
                    width: int) -> Table:
    table = plain_table()
    table.padding = (0, 1, 0, 0)  # one space between columns: room for a whole GS1 barcode
    table.add_column("DECIDED", no_wrap=True, min_width=12)
    table.add_column("LANE", no_wrap=True, min_width=9, max_width=12)
    barcodes = [shown_barcode(d.get("barcode")) for d in decisions if isinstance(d, Mapping)]
    # The barcode is what a technician looks for: the reasons column gives way first.
    barcode_width = max(12, width - DECISION_FIXED_WIDTH - REASONS_WIDTH)
    table.add_column("BARCODE", no_wrap=True, overflow="ellipsis", max_width=barcode_width,
                     min_width=min(barcode_width, max(map(len, barcodes), default=7)))
    table.add_column("LAT MS", justify="right", no_wrap=True, min_width=6)
    table.add_column("REASONS", overflow="ellipsis", no_wrap=True)
    recent = [d for d in decisions if isinstance(d, Mapping)]
    if rows is not None:
        recent = recent[-rows:] if rows > 0 else []
    for decision in reversed(recent):  # newest first: what just happened is on top
        latency = decision.get("latency_ms")
        table.add_row(
            Text(local_time(decision.get("at"), zone)),
            cell(decision.get("lane"), 12),
            Text(shown_barcode(decision.get("barcode"))),
            Text(f"{latency:.2f}" if isinstance(latency, int | float) else "-"),
            cell(",".join(str(r) for r in decision.get("reasons") or []) or "-"),
        )
    return table


def shown_barcode(barcode: Any) -> str:
    """GS1's group separator reads as <GS>; every other control character as an escape."""
    if not barcode:
        return "(no read)"
    return terminal_safe(str(barcode).replace("\x1d", "<GS>"))


def duration(seconds: Any) -> str:
    try:
        remaining = int(seconds)
    except (TypeError, ValueError):
        return safe(seconds)
    days, remaining = divmod(remaining, 86400)
    hours, remaining = divmod(remaining, 3600)
    minutes, secs = divmod(remaining, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    return f"{hours}h {minutes}m {secs}s" if hours else f"{minutes}m {secs}s"


# -- the whole screen -------------------------------------------------------------------------

def _mapping(document: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = document.get(key)
    return value if isinstance(value, Mapping) else None


def body_sections(document: Mapping[str, Any], zone: tzinfo | None,
                  width: int) -> list[RenderableType]:
    """Everything but the header and the last decisions, top to bottom."""
    sections: list[RenderableType] = []
    devices = _mapping(document, "devices")
    if devices is not None:
        sections.append(devices_table(devices, zone) if devices else Text("no devices"))
    counted = titled(*[(title, pairs(value)) for key, title in (
        ("counters", "Counters"), ("exceptions_by_reason", "Exception"),
        ("in_flight", "In flight")) if (value := _mapping(document, key))])
    lanes = _mapping(document, "lanes")
    if lanes is not None and width >= SIDE_BY_SIDE_MIN_WIDTH:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row(lanes_table(lanes), counted)
        sections.append(grid)
    else:
        if lanes is not None:
            sections.append(lanes_table(lanes))
        sections.append(counted)
    outcomes = _mapping(document, "outcomes")
    if outcomes is not None:
        sections.append(outcomes_table(outcomes))
    latency = _mapping(document, "latency")
    if latency is not None:
        sections.append(latency_line(latency, width))
    outbox = _mapping(document, "outbox")
    if outbox is not None:
        sections.append(outbox_line(outbox))
    mqtt = _mapping(document, "mqtt")
    if mqtt is not None:
        sections.append(titled(("MQTT", pairs(mqtt))))
    holds = _mapping(document, "holds")
    if holds is not None:
        sections.append(holds_line(holds, zone))
    for key in sorted(set(document) - set(KNOWN_SECTIONS) - {"error"}):  # added later
        value = document[key]
        title = terminal_safe(str(key).replace("_", " ").capitalize())[:24]
        body = pairs(value) if isinstance(value, Mapping) else Text(safe(value))
        sections.append(titled((title, body)))
    return sections
