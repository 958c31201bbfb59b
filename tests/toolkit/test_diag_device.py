"""`diag scale --zero|--tare` and `diag scanner --trigger` against simulators on ptys."""

from __future__ import annotations

import os
import threading
import time

import serial

from edge_agent.cli.main import main

WAIT_S = 5.0


def test_zero_and_tare_a_scale(capsys, pty_bench):
    scale = pty_bench.scale("mt-sics", weight_kg=0.4)
    port = str(pty_bench.link("scale"))
    assert main(["diag", "scale", "--port", port, "--profile", "mt-sics", "--zero"]) == 0
    assert "reply 'Z A'" in capsys.readouterr().out
    assert scale.shown_kg == 0.0

    scale.set_weight(2.5)
    assert main(["diag", "scale", "--port", port, "--profile", "mt-sics", "--tare"]) == 0
    assert "reply 'T S" in capsys.readouterr().out
    assert scale.shown_kg == 0.0


def test_scale_from_the_config(capsys, line_devices, write_config):
    config = write_config(line_devices)
    assert main(["diag", "scale", "--config", str(config), "--zero"]) == 0
    assert "Z A" in capsys.readouterr().out


def test_a_profile_of_another_kind_of_device_is_refused(capsys, line_devices, write_config):
    config = write_config(line_devices)
    code = main(["diag", "scale", "--config", str(config), "--device", "scanner", "--zero"])
    assert code == 2
    assert "profile generic-scanner is a scanner profile; diag scale needs a scale profile" in (
        capsys.readouterr().err)
    sorter = str(line_devices["sorter"][0])
    assert main(["diag", "scale", "--port", sorter, "--profile", "generic-divert", "--zero"]) == 2
    assert "generic-divert is a sorter profile" in capsys.readouterr().err


def test_a_command_the_profile_lacks_is_refused_with_what_it_has(capsys, line_devices):
    # toledo-continuous only streams: it has no zero command.
    scale = str(line_devices["scale"][0])
    assert main(["diag", "scale", "--port", scale, "--profile", "toledo-continuous",
                 "--zero"]) == 2
    assert "profile toledo-continuous has no 'zero' command (its commands: " in (
        capsys.readouterr().err)


def test_a_scanner_without_a_trigger_says_how_to_watch_it(capsys, line_devices):
    scanner = str(line_devices["scanner"][0])
    code = main(["diag", "scanner", "--port", scanner, "--profile", "generic-scanner",
                 "--trigger"])
    assert code == 2
    err = capsys.readouterr().err
    assert "profile generic-scanner has no trigger command: this scanner reads by itself" in err
    assert f"edge-agent diag watch --port {scanner} --profile generic-scanner" in err
    assert "polling.commands" not in err


def test_busy_port_says_the_agent_holds_it(capsys, line_devices, write_config):
    config = write_config(line_devices)
    holder = serial.Serial(os.path.realpath(line_devices["scale"][0]), exclusive=True)
    try:
        assert main(["diag", "scale", "--config", str(config), "--zero"]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err
    assert "busy" in err and "systemctl stop edge-agent" in err


def test_missing_device_name_and_missing_port(capsys, line_devices, write_config, tmp_path):
    config = write_config(line_devices)
    assert main(["diag", "scale", "--config", str(config), "--device", "belt", "--zero"]) == 2
    assert "no device 'belt'" in capsys.readouterr().err
    gone = str(tmp_path / "nothing")
    assert main(["diag", "scale", "--port", gone, "--profile", "mt-sics", "--zero"]) == 2
    assert "diag ports" in capsys.readouterr().err


def test_trigger_a_scanner_and_print_its_read(capsys, pty_bench):
    scanner = pty_bench.scanner("keyence-fixed")
    triggers_before = scanner.triggers_received

    def scan_once_triggered() -> None:
        deadline = time.monotonic() + WAIT_S
        while scanner.triggers_received <= triggers_before and time.monotonic() < deadline:
            threading.Event().wait(0.01)  # polling the simulator's state, with a deadline
        scanner.scan("RB123456785GB")

    helper = threading.Thread(target=scan_once_triggered)
    helper.start()
    code = main(["diag", "scanner", "--port", str(pty_bench.link("scanner")),
                 "--profile", "keyence-fixed", "--trigger", "--seconds", "1"])
    helper.join()
    out = capsys.readouterr().out
    assert "scan 'RB123456785GB'" in out
    assert "trigger off" in out
    assert code == 0
