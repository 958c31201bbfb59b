"""What confused a new user in the first hour, each now said plainly: a missing or regular-file
port, verbosity after the command, every config problem at once, a doctor with no config file,
`profiles list` at 80 columns."""

from __future__ import annotations

import json

from edge_agent.cli.main import build_parser, main
from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.profiles import load_profile


def test_watching_a_missing_port_is_an_error_not_exit_0(capsys, tmp_path):
    gone = tmp_path / "ttyUSB9"
    code = main(["diag", "watch", "--port", str(gone), "--profile", "mt-sics", "--seconds", "5"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot open device: no such device {gone}" in err
    assert "edge-agent diag ports" in err


def test_a_regular_file_as_a_port_says_so(capsys, tmp_path):
    regular = tmp_path / "scale.log"
    regular.write_text("not a device\n")
    port = SupervisedPort("scale", str(regular), load_profile("mt-sics"))
    assert not port.connect()
    assert port.last_error == f"{regular} is not a serial device (a regular file or directory)"
    assert main(["diag", "watch", "--port", str(regular), "--profile", "mt-sics"]) == 2
    err = capsys.readouterr().err
    assert "is not a serial device" in err and "ioctl" not in err


def test_verbosity_and_log_format_may_follow_the_command():
    parser = build_parser()
    after = parser.parse_args(["diag", "watch", "--port", "p", "--profile", "x", "-vv",
                               "--log-format", "json"])
    assert (after.verbose, after.log_format) == (2, "json")
    before = parser.parse_args(["-v", "diag", "watch"])
    assert (before.verbose, before.log_format) == (1, "auto")
    neither = parser.parse_args(["profiles", "list"])
    assert (neither.verbose, neither.log_format) == (0, "auto")


def test_config_check_reports_an_unknown_profile_with_the_other_problems(capsys, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG 1"\nline = "L3"\n\n[devices.scale]\nport = "/dev/x"\n'
                      'profile = "mt-sicks"\nbaud = 9600\n')
    assert main(["config", "check", str(config)]) == 2
    out = capsys.readouterr().out
    assert f"{config}: site: " in out
    assert f"{config}: devices.scale.baud: unknown setting" in out
    assert f"{config}: devices.scale.profile: " in out and "mt-sicks" in out


def test_doctor_without_a_config_file_says_to_write_one(capsys, tmp_path):
    missing = tmp_path / "agent.toml"
    main(["doctor", "--config", str(missing), "--json"])
    [config] = [check for check in json.loads(capsys.readouterr().out)["checks"]
                if check["name"] == "config"]
    assert (config["status"], config["detail"]) == ("fail", f"{missing}: no such file")
    assert "fix the file" not in config["advice"]
    assert "edge-agent config example" in config["advice"]


def test_profiles_list_fits_80_columns_and_keeps_every_summary(capsys):
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = " ".join(out.split())
    summary = load_profile("toledo-continuous").summary
    assert " ".join(summary.split()) in words
