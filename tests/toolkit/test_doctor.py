"""`edge-agent doctor` against simulated devices on ptys and a real mosquitto."""

from __future__ import annotations

import json
import os
from pathlib import Path

import serial
from toolkit_helpers import broker_mqtt

from edge_agent.cli.main import main


def doctor(capsys, config: Path, *extra: str) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--config", str(config), "--service-user", _me(), "--json", *extra])
    document = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in document["checks"]}


def _me() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def test_healthy_line_passes_its_device_and_broker_checks(capsys, line_devices, write_config,
                                                          mosquitto):
    config = write_config(line_devices, broker_mqtt(mosquitto))
    code, checks = doctor(capsys, config)
    assert checks["config"]["status"] == "pass"
    for name in ("scale", "scanner", "sorter"):
        assert checks[f"device {name}: profile"]["status"] == "pass"
        assert checks[f"device {name}: port present"]["status"] == "pass"
        assert checks[f"device {name}: port free"]["status"] == "pass"
    assert checks["device scale: answering"]["status"] == "pass"
    # A scanner and a sorter speak only when something happens: silence is a warning.
    assert checks["device scanner: answering"]["status"] == "warn"
    for name in ("broker reachable", "broker credentials", "broker ACL", "state directory"):
        assert checks[name]["status"] == "pass", checks[name]
    # No systemd in this container: said as a warning, never a crash.
    assert checks["service"]["status"] == "warn"
    assert "no systemd" in checks["service"]["detail"]
    assert code == 1  # the worst is a warning


def test_missing_port_fails_with_advice(capsys, line_devices, write_config, tmp_path):
    devices = dict(line_devices, scale=(tmp_path / "by-id" / "usb-Gone-if00", "mt-sics"))
    code, checks = doctor(capsys, write_config(devices))
    missing = checks["device scale: port present"]
    assert missing["status"] == "fail"
    assert "diag ports" in missing["advice"]
    assert "device scale: answering" not in checks
    assert code == 2


def test_busy_port_names_the_holder(capsys, line_devices, write_config):
    config = write_config(line_devices)
    holder = serial.Serial(os.path.realpath(line_devices["scale"][0]), exclusive=True)
    try:
        code, checks = doctor(capsys, config)
    finally:
        holder.close()
    busy = checks["device scale: port free"]
    assert busy["status"] == "fail"
    assert str(os.getpid()) in busy["detail"]
    assert "stop the other program" in busy["advice"]
    assert code == 2


def test_wrong_profile_frames_that_do_not_decode(capsys, pty_bench, write_config):
    pty_bench.scale("toledo-continuous", name="belt", weight_kg=2.0)
    # A Toledo stream read as A&D: frames arrive but none decode.
    code, checks = doctor(capsys, write_config({"belt": (pty_bench.link("belt"), "and-standard")}))
    assert code == 2
    answering = checks["device belt: answering"]
    assert answering["status"] == "fail"
    assert "diag capture" in answering["advice"]


def test_unreadable_by_service_user(capsys, line_devices, write_config):
    config = write_config(line_devices)
    node = os.path.realpath(line_devices["scale"][0])
    os.chmod(node, 0o600)
    code = main(["doctor", "--config", str(config), "--service-user", "nobody", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    access = checks["device scale: readable by nobody"]
    assert access["status"] == "fail"
    assert "usermod -aG dialout nobody" in access["advice"]
    assert code == 2


def test_broker_down_fails_with_advice(capsys, line_devices, write_config, mosquitto):
    config = write_config(line_devices, broker_mqtt(mosquitto))
    mosquitto.stop()
    code, checks = doctor(capsys, config)
    down = checks["broker reachable"]
    assert down["status"] == "fail"
    assert "refused" in down["detail"].lower()
    assert code == 2


def test_bad_config_is_one_failure_and_the_host_checks_still_run(capsys, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\nline = "L 1"\n')
    code, checks = doctor(capsys, config)
    assert checks["config"]["status"] == "fail"
    assert "line" in checks["config"]["detail"]
    assert "config check" in checks["config"]["advice"]
    assert "clock synchronised" in checks
    assert code == 2


def test_human_output_fits_80_columns(capsys, line_devices, write_config):
    config = write_config(line_devices)
    code = main(["doctor", "--config", str(config), "--service-user", _me()])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "-> " in out  # advice lines for the warnings
    assert out.strip().splitlines()[-1].startswith("WARN")
    assert code == 1


def test_missing_state_directory_fails_with_the_command_to_make_it(capsys, line_devices,
                                                                    write_config, tmp_path):
    config = write_config({})
    config.write_text(config.read_text().replace(str(tmp_path / "state"),
                                                 str(tmp_path / "missing")))
    code, checks = doctor(capsys, config)
    state = checks["state directory"]
    assert state["status"] == "fail" and "does not exist" in state["detail"]
    assert state["advice"].startswith("create it: install -d")
    assert code == 2
