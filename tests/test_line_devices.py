"""Which devices make a line: scanner [+ scale] [+ sorter], or dws [+ sorter]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.devices.line_devices import line_problems

PROFILE_OF_KIND = {"scanner": "generic-scanner", "scale": "mt-sics", "dws": "generic-dws",
                   "sorter": "generic-divert"}


@pytest.mark.parametrize(
    ("kinds", "problem"),
    [
        (["scanner", "scale", "sorter"], None),
        (["scanner", "sorter"], None),
        (["scanner"], None),
        (["dws", "sorter"], None),
        (["dws"], None),
        (["dws", "scanner", "sorter"], "a DWS unit (dws) replaces the scanner and the scale"),
        (["dws", "scale"], "remove scale (valid lines: scanner [+ scale] [+ sorter], or dws"),
        (["dws", "scanner", "scale"], "remove scale, scanner"),
    ],
)
def test_valid_and_refused_lines(kinds, problem):
    problems = line_problems({kind: kind for kind in kinds})
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_a_sorter_driven_sorter_is_the_lines_only_device():
    assert line_problems({"sorter": "sorter"}, sorter_driven=True) == []
    [problem] = line_problems({"sorter": "sorter", "scan": "scanner", "scale": "scale"},
                              sorter_driven=True)
    assert "a sorter-driven sorter (sorter) reports what it read" in problem
    assert "remove scale, scan" in problem


def test_two_dws_units_are_one_too_many():
    assert line_problems({"dws1": "dws", "dws2": "dws"}) == ["devices: more than one dws "
                                                             "(dws1, dws2)"]


def config_text(kinds: list[str]) -> str:
    devices = "".join(f'\n[devices.{kind}]\nport = "/dev/sortline/{kind}"\n'
                      f'profile = "{PROFILE_OF_KIND[kind]}"\n' for kind in kinds)
    return f'site = "HKG1"\nline = "L3"\nstate_dir = "state"\n{devices}'


@pytest.mark.parametrize(("kinds", "ok"), [(["dws", "sorter"], True),
                                           (["dws", "scale", "sorter"], False)])
def test_config_check_knows_the_dws_lines(tmp_path: Path, capsys, kinds, ok):
    path = tmp_path / "agent.toml"
    path.write_text(config_text(kinds))
    assert main(["config", "check", str(path), "--json"]) == (0 if ok else 2)
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is ok
    if not ok:
        assert any("replaces the scanner and the scale" in p for p in report["problems"])


def test_run_refuses_a_dws_beside_a_scanner_before_opening_any_port(tmp_path: Path, capsys):
    path = tmp_path / "agent.toml"
    path.write_text(config_text(["dws", "scanner"]) + "\n[mqtt]\nenabled = false\n")
    assert main(["run", "--config", str(path)]) == 2
    assert "remove scanner" in capsys.readouterr().err
