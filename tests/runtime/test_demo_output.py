"""`edge-agent demo`'s output says what each number counts: nothing that looks like loss when
nothing was lost (a p99 of 0 µs before any parcel, "decided" short of "sent" at the end, a
latency over fewer parcels than were sent without saying why)."""

from __future__ import annotations

import io
import re

from edge_agent.simulation.demo import run_demo

PARCELS = 120


def test_demo_numbers_add_up_and_say_what_they_count(tmp_path):
    out = io.StringIO()
    assert run_demo(PARCELS, 150.0, tmp_path / "demo", out=out) == 0
    text = out.getvalue()
    assert "p99 0 µs" not in text
    assert "decided: parcels the agent had decided at its last" in text
    progress = [line for line in text.splitlines() if line.startswith("  sent ")]
    final = progress[-1]
    assert final.endswith("(done)")
    sent, decided = (int(n) for n in re.findall(r"(?:sent|decided)\s+(\d+)", final))
    assert sent == decided == PARCELS
    sample = re.search(r"measured on (\d+) of (\d+) lane commands: the (\d+) no-reads", text)
    assert sample is not None, text
    measured, commands, no_reads = (int(n) for n in sample.groups())
    assert commands == PARCELS and measured + no_reads <= commands
    if measured + no_reads < commands:
        assert "could not be matched" in text
    assert f"parcel events received by central: {PARCELS} " in text
    # Outcomes beside decisions: each lane's parcels all ended, and central got one per parcel.
    assert f"outcome events received by central: {PARCELS} ({PARCELS} of them joined" in text
    header = next(line for line in text.splitlines() if line.startswith("lane        bin"))
    assert header.split("|")[1].split() == ["sorted", "late", "full", "recirc", "lost", "no",
                                            "conf"]
    rows = [line for line in text.splitlines() if re.match(r"(ZHUHAI|SHANGHAI|EXPORT|EXC)", line)]
    for row in rows:
        decided, confirmed = row.split("|")
        assert int(decided.split()[-1]) == sum(int(n) for n in confirmed.split()), row
