"""`diag status --follow` in a real terminal: tmux at 80x24, then resized to 120x40.

The screen is captured as a technician would see it: the header stays on the first line, no
text of an earlier draw remains, every counter (decode and I/O errors too) and the lanes with
their column headers are there, times are in the site's time zone, sections the view does not
know are shown, and a hostile barcode is shown escaped without retitling the terminal.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.waiting import wait_for

from edge_agent.runtime.status_server import StatusServer

HOSTILE = "\x1b]0;owned\x07\x1b[2J"
DECISION_TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d\d\d ")


def _snapshot() -> dict:
    decisions = [
        {"at": f"2024-06-01T11:12:{second:02d}.456+00:00", "parcel": f"p{second}",
         "lane": "ZHUHAI", "bin": 1, "barcode": f"LP{second:014d}", "reasons": [],
         "latency_ms": 1.25}
        for second in range(19)
    ]
    decisions.append({"at": "2024-06-01T11:12:59.001+00:00", "parcel": "p99",
                      "lane": "EXCEPTION", "bin": 4, "barcode": HOSTILE,
                      "reasons": ["invalid_identifier"], "latency_ms": 0.8})
    device = {"state": "connected", "last_error": None,
              "last_frame_at": "2024-06-01T11:12:59.100+00:00",
              "counters": {"frames": 12345, "decode_errors": 7, "io_errors": 3,
                           "garbage_bytes": 11, "reconnects": 2}}
    return {
        "agent": {"version": "0.1.0", "site": "HKG1", "line": "L3", "pid": 4242,
                  "timezone": "Asia/Hong_Kong", "started_at": "2024-06-01T08:00:00+00:00",
                  "uptime_s": 11523.4, "rules_version": "2024-06-01.2" + HOSTILE},
        "devices": {"scanner": device, "scale": dict(device, state="reconnecting",
                                                     last_error="no such device /dev/x"),
                    "sorter": device},
        "lanes": {name: {"state": "open", "bin": number, "count": 100 * number}
                  for number, name in enumerate(("ZHUHAI", "SHANGHAI", "EXPORT", "EXCEPTION"),
                                                start=1)},
        "counters": {"scans": 1234, "weights": 1230, "parcels": 1234, "acks": 1230,
                     "naks": 1, "acks_missing": 3, "sorter_unreachable": 0,
                     "decode_errors": 7},
        "exceptions_by_reason": {"no_read": 12, "weight_mismatch": 3},
        "latency": {"count": 1234, "p50_us": 1250.0, "p99_us": 3400.0, "p999_us": 7900.0,
                    "max_us": 8160.7},
        "outbox": {"depth": 12, "oldest_age_s": 3.25, "bytes_on_disk": 2_000_000,
                   "budget_bytes": 268_435_456, "evicted": {}, "appended": 1246},
        "mqtt": {"connected": True, "reconnects": 1, "inflight": 0, "last_error": None},
        "in_flight": {"pairing": 1, "awaiting_ack": 0},
        # Sections the view has no code for: shown as key/value pairs all the same.
        "pairing": {"mode": "poll-after-scan", "abandoned_polls": 2},
        "input_health": {"scanner_no_reads": 12},
        "clock": {"synchronised": True},
        "last_decisions": decisions,
    }


@pytest.fixture
def status_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "status.sock"
    server = StatusServer(path, _snapshot)
    server.start()
    yield path
    server.stop()


class Tmux:
    """A private tmux server (its own socket name): nothing of another session is touched."""

    def __init__(self, name: str):
        self.base = ["tmux", "-L", name]
        self.pid: int | None = None  # the server's, once a session started it

    def __call__(self, *args: str) -> str:
        return subprocess.run([*self.base, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def screen(self) -> list[str]:
        return self("capture-pane", "-p", "-t", "status").splitlines()

    def server_pid(self) -> int:
        return int(self("display-message", "-p", "#{pid}").strip())

    def stop(self, pid: int) -> None:
        """End this test's tmux server (by its pid); the view in its pane gets SIGHUP."""
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not Path(f"/proc/{pid}").exists()
                 or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
                 what="the tmux server gone")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is missing: ./dev install puts it in (Debian package tmux)")
    session = Tmux(f"edge-agent-test-{os.getpid()}-{tmp_path.name}")
    yield session
    if session.pid is not None:
        session.stop(session.pid)


def _start_follow(tmux: Tmux, socket: Path, width: int, height: int) -> None:
    command = (f"{sys.executable} -m edge_agent diag status --follow --interval 0.2 "
               f"--socket {socket}")
    tmux("new-session", "-d", "-s", "status", "-x", str(width), "-y", str(height), command)
    tmux.pid = tmux.server_pid()


def _decision_rows(screen: list[str]) -> list[str]:
    return [line for line in screen if DECISION_TIME.match(line)]


def test_follow_at_80x24_keeps_the_header_and_shows_every_part(tmux, status_socket):
    _start_follow(tmux, status_socket, 80, 24)
    screen = wait_for(lambda: (s := tmux.screen()) and _decision_rows(s) and s,
                      what="the status screen with decisions")
    first_refresh = screen[1]
    # A later refresh (its time differs) draws the same screen, header on top (nothing
    # scrolled away). A refresh whose query timed out on a loaded machine shows the error
    # instead: the one after it is taken.
    screen = wait_for(lambda: (s := tmux.screen()) and s[1] != first_refresh
                      and s[0].startswith("edge-agent 0.1.0") and _decision_rows(s) and s,
                      what="a later refresh")
    assert len(screen) <= 24 and max(len(line) for line in screen) <= 80
    assert screen[0].startswith("edge-agent 0.1.0  HKG1/L3  pid 4242  rules 2024-06-01.2")
    # Times in the site's zone (UTC+8), like the cutoffs: started 08:00 UTC is 16:00 there.
    assert "since 2024-06-01 16:00:00" in screen[1] and "Asia/Hong_Kong" in screen[1]
    text = "\n".join(screen)
    assert screen[2].split()[:6] == ["DEVICE", "STATE", "FRAMES", "DECODE", "ERR", "I/O"]
    scanner = next(line for line in screen if line.startswith("scanner"))
    assert scanner.split()[:7] == ["scanner", "connected", "12345", "7", "3", "11", "2"]
    assert "scale: no such device /dev/x" in text
    lanes_header = next(line for line in screen if line.startswith("LANE"))
    assert lanes_header.split()[:4] == ["LANE", "BIN", "STATE", "PARCELS"]
    assert any(line.split()[:4] == ["EXCEPTION", "4", "open", "400"] for line in screen)
    latency = next(line for line in screen if line.startswith("Latency"))
    assert latency.index("p50") < latency.index("p99 ") < latency.index("max")
    # Every counter, none cut with "…" (a long block wraps beside the lanes).
    assert "…" not in text
    for value in ("scans 1234", "naks 1", "missing 3", "decode errors 7", "no read 12"):
        assert value in text, value
    assert "evicted none" in text
    for section in ("Pairing   mode poll-after-scan", "Input health scanner no reads 12",
                    "Clock     synchronised yes"):
        assert any(line.startswith(section) for line in screen), section
    # The escapes in the rules version are shown, and never reached the terminal.
    assert "rules 2024-06-01.2\\x1b]0;owned" in screen[0]
    assert tmux("display-message", "-p", "-t", "status", "#{pane_title}").strip() != "owned"
    assert _decision_rows(screen), "at least the newest decision fits"


def test_follow_uses_the_whole_screen_when_it_grows(tmux, status_socket):
    _start_follow(tmux, status_socket, 80, 24)
    small = wait_for(lambda: _decision_rows(tmux.screen()), what="decisions at 80x24")
    tmux("resize-window", "-t", "status", "-x", "120", "-y", "40")
    large = wait_for(lambda: (rows := _decision_rows(tmux.screen())) and len(rows) > len(small)
                     and rows, what="more decisions at 120x40")
    screen = tmux.screen()
    assert len(large) >= len(small) + 10
    assert screen[0].startswith("edge-agent 0.1.0")
    # The newest is on top: the hostile one, shown escaped.
    assert large[0].split()[2].startswith("\\x1b]0;owned\\x07\\x1b[2J")
    assert "scan → lane command" in "\n".join(screen)  # the wider screen says what it counts
    assert tmux("display-message", "-p", "-t", "status", "#{pane_title}").strip() != "owned"


def test_the_service_start_path_never_imports_rich():
    probe = (
        "import sys; from edge_agent.cli.main import build_parser; build_parser('run'); "
        "import edge_agent.runtime.agent, edge_agent.cli.status_cmd, edge_agent.cli.diag_cmd; "
        "print('rich' in sys.modules, 'edge_agent.cli.status_sections' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.split() == ["False", "False"]
