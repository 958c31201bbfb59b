"""One reading of why a port would not open, for the port, the doctor and `diag capture`."""

from __future__ import annotations

import errno
import os

import serial

from edge_agent.devices.open_errors import BUSY_PREFIX, classify_open_error, is_busy


def _open_error(path: str) -> BaseException:
    try:
        serial.Serial(path, exclusive=True, timeout=0).close()
    except (OSError, serial.SerialException) as exc:
        return exc
    raise AssertionError(f"{path} opened")


def test_a_port_held_exclusively_by_another_program_is_busy():
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        holder = serial.Serial(path, exclusive=True, timeout=0)
        try:
            failure = classify_open_error(_open_error(path))
        finally:
            holder.close()
    finally:
        os.close(master)
        os.close(slave)
    assert failure.busy
    assert failure.reason.startswith(BUSY_PREFIX) and path in failure.reason
    assert is_busy(failure.reason)


def test_a_missing_port_is_not_busy(tmp_path):
    failure = classify_open_error(_open_error(str(tmp_path / "ttyUSB9")))
    assert not failure.busy and not is_busy(failure.reason)
    assert "ttyUSB9" in failure.reason


def test_ebusy_from_a_driver_is_busy_and_an_empty_message_still_says_something():
    assert classify_open_error(OSError(errno.EBUSY, "Device or resource busy")).busy
    assert not classify_open_error(PermissionError(errno.EACCES, "Permission denied")).busy
    assert classify_open_error(ValueError()).reason == "ValueError"
    assert not is_busy(None)
