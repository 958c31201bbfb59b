"""The running agent's status document as a screen: `diag status` and `diag status --follow`.

Built on rich (tables that fit the terminal, a full-screen redraw for --follow), which only
this module and status_sections.py (one function per section) import: `edge-agent run` never
pays for it.

What a technician reads, top to bottom: who and since when (the header, always the first
lines), the devices with their error counters, the lanes beside the line's counters, the
latency, outbox and broker link, then any section the agent adds that this view does not know
(shown as compact `key value` pairs, so a new section appears without a change here), and the
last decisions in whatever height is left.

Every string from the document went through a device, a label or the network: each one passes
through `terminal_safe`, and into rich only as `Text` (never as markup), so an escape sequence
or a `[bold]` in a barcode is shown, never obeyed. Times are shown in the site's time zone
(the snapshot's `agent.timezone`), like the route cutoffs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.text import Text

from edge_agent.cli.status_sections import (
    body_sections,
    decisions_table,
    header,
    safe,
    site_zone,
)


class StatusScreen:
    """The status document drawn to fit the console: header first, last decisions in the
    height that remains (all of them when `fit_height` is False, for a one-shot print)."""

    def __init__(self, document: Mapping[str, Any], *, zone: tzinfo | None,
                 footer: str | None = None, fit_height: bool = True):
        self.document = document
        self.zone = zone
        self.footer = footer
        self.fit_height = fit_height

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterable[Any]:
        width = options.max_width
        top: list[RenderableType] = [header(self.document, self.zone, self.footer)]
        if "error" in self.document:
            top.append(Text(safe(self.document["error"]), style="bold red"))
        top += body_sections(self.document, self.zone, width)
        decisions = self.document.get("last_decisions")
        if not isinstance(decisions, list):
            yield Group(*top)
            return
        rows = None
        if self.fit_height:
            used = len(console.render_lines(Group(*top), options.update(height=None),
                                            pad=False))
            height = options.height or console.size.height
            rows = max(0, height - used - 1)  # 1: the decisions table's header
        if not decisions:
            top.append(Text("no decisions yet", style="dim"))
        elif rows == 0:  # everything above filled the screen: say where the decisions went
            top.append(Text(f"last decisions: {len(decisions)}, in a taller terminal",
                            style="dim"))
        else:
            top.append(decisions_table(decisions, self.zone, rows, width))
        yield Group(*top)


def render_text(document: Mapping[str, Any], *, width: int = 80,
                fallback_zone: str | None = None) -> str:
    """The whole document as plain text `width` columns wide (no colour, no escapes)."""
    import io

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    console.print(StatusScreen(document, zone=site_zone(document, fallback_zone),
                               fit_height=False))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def follow_live(fetch: Any, *, interval_s: float, count: int | None,
                fallback_zone: str | None) -> int:
    """Redraw the status full-screen every `interval_s` until Ctrl-C (or `count` draws).

    The alternate screen and a whole-screen redraw: nothing of the previous draw stays beside
    the new one, the header is always the first line, and the screen's size is read at each
    draw, so a resized terminal is used whole. `fetch()` returns (document, exit code)."""
    import time

    from rich.live import Live

    console = Console(highlight=False, emoji=False)
    code = 0
    shown = 0
    with Live(console=console, screen=True, auto_refresh=False,
              vertical_overflow="crop") as live:
        while count is None or shown < count:
            if shown:
                time.sleep(interval_s)  # the refresh period itself, not a wait for readiness
            document, code = fetch()
            shown += 1
            _fit_to_terminal(console)
            zone = site_zone(document, fallback_zone)
            # The time of this draw: it changes at each refresh, so a stuck view shows.
            footer = f"now {datetime.now(zone).strftime('%H:%M:%S')}"
            live.update(StatusScreen(document, zone=zone, footer=footer), refresh=True)
    return code


def _fit_to_terminal(console: Console) -> None:
    """The terminal's size now: a resized window is used whole at the next draw. (rich fixes
    its size at start-up from $COLUMNS/$LINES when a shell exports them.)"""
    import os

    try:
        size = os.get_terminal_size(console.file.fileno())
    except (OSError, ValueError, AttributeError):
        return
    if size.columns and size.lines:  # a pty nobody sized says 0x0: keep rich's default
        console.size = (size.columns, size.lines)
