"""`diag watch --config`: every device the agent's config names, readable on 80 columns."""

from __future__ import annotations

import os
import re

import serial

from edge_agent.cli.diag_format import describe
from edge_agent.cli.main import main
from edge_agent.devices.messages import Scan


def test_watch_every_configured_device_with_steady_time(capsys, line_devices, write_config):
    config = write_config(line_devices)
    assert main(["diag", "watch", "--config", str(config), "--count", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    weights = [line for line in lines if " scale: weight 1.25 kg (stable)" in line]
    assert len(weights) == 5
    steady = [float(re.search(r"steady (\d+\.\d) s", line).group(1)) for line in weights]
    assert steady[0] == 0.0 and steady == sorted(steady) and steady[-1] > 0
    summary = {m.group(1) for line in lines if (m := re.match(r"(\w+): state ", line))}
    assert summary == {"scale", "scanner", "sorter"}
    assert max(len(line) for line in lines) <= 80


def test_watch_refuses_ports_the_agent_holds(capsys, line_devices, write_config):
    config = write_config(line_devices)
    holder = serial.Serial(os.path.realpath(line_devices["sorter"][0]), exclusive=True)
    try:
        assert main(["diag", "watch", "--config", str(config), "--seconds", "1"]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert "port busy: sorter" in err and "diag status --follow" in err


def test_long_reads_are_cut_to_80_columns():
    line = describe("scanner", Scan("X" * 200))
    assert len(line) == 80 and line.endswith("…")
