"""The doctor's check of an FTDI adapter's latency timer, read from a sysfs tree.

No USB adapter exists on the test machine, so the sysfs directory the kernel would make for one
(/sys/bus/usb-serial/devices/ttyUSB3/latency_timer) is written to a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.diagnostics.results import Status
from edge_agent.diagnostics.usb_serial_checks import check_latency_timer, latency_timer_file


def _sysfs(tmp_path: Path, content: str | None) -> Path:
    sysfs = tmp_path / "sys"
    timer = latency_timer_file("/dev/ttyUSB3", sysfs)
    timer.parent.mkdir(parents=True)
    if content is not None:
        timer.write_text(content)
    return sysfs


@pytest.mark.parametrize(("content", "status"), [("16\n", Status.WARN), ("3\n", Status.WARN),
                                                 ("2\n", Status.PASS), ("1\n", Status.PASS)])
def test_a_timer_longer_than_the_pairing_margin_is_a_warning_with_the_fix(
        tmp_path, content, status):
    result = check_latency_timer("scale", "/dev/ttyUSB3", _sysfs(tmp_path, content))
    assert result is not None and result.status == status
    if status == Status.WARN:
        assert "latency_timer" in result.advice and content.strip() + " ms" in result.detail


def test_a_stable_name_is_followed_to_the_adapter(tmp_path):
    link = tmp_path / "dev" / "scale"
    link.parent.mkdir()
    link.symlink_to("/dev/ttyUSB3")  # as the udev rule's /dev/sortline/scale
    result = check_latency_timer("scale", str(link), _sysfs(tmp_path, "16"))
    assert result is not None and result.status == Status.WARN


def test_an_adapter_without_a_latency_timer_has_nothing_to_check(tmp_path):
    assert check_latency_timer("scale", "/dev/ttyACM0", _sysfs(tmp_path, "16")) is None


def test_an_unreadable_value_is_a_warning_that_names_the_file(tmp_path):
    result = check_latency_timer("scale", "/dev/ttyUSB3", _sysfs(tmp_path, "fast"))
    assert result is not None and result.status == Status.WARN
    assert "latency_timer" in result.detail and "'fast'" in result.detail
