"""Scanner and sorter simulators, and the faults every simulator can inject."""

from __future__ import annotations

import os

import pytest
import serial
from support.pty_devices import PtyBench, wait_until

READ_TIMEOUT_S = 3.0


def open_port(path) -> serial.Serial:
    return serial.Serial(str(path), 9600, timeout=READ_TIMEOUT_S)


def test_generic_scanner_sends_terminated_reads_with_aim_prefix(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("generic-scanner", aim_prefix="]C1")
    with open_port(scanner.path) as port:
        scanner.scan("00376130321109103420")
        assert port.read_until(b"\r\n") == b"]C100376130321109103420\r\n"


def test_generic_scanner_no_read_has_no_prefix(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("generic-scanner")
    with open_port(scanner.path) as port:
        scanner.no_read()
        assert port.read_until(b"\r\n") == b"NOREAD\r\n"


def test_zebra_scanner_sends_no_terminator(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("zebra-ds")
    with open_port(scanner.path) as port:
        scanner.scan("RB123456785GB")
        assert port.read(13) == b"RB123456785GB"
        port.timeout = 0.05  # nothing more is coming: a bounded read proves it
        assert port.read(1) == b""


def test_keyence_reads_only_inside_a_trigger_window(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("keyence-fixed")
    with open_port(scanner.path) as port:
        scanner.scan("LP00123456789")  # label passes before the trigger: held
        port.write(b"LON\r")
        assert port.read_until(b"\r") == b"OK,LON\r"
        assert port.read_until(b"\r") == b"LP00123456789\r"
        port.write(b"LOFF\r")
        assert port.read_until(b"\r") == b"OK,LOFF\r"
        port.write(b"LON\r")
        port.write(b"LOFF\r")  # a window with nothing read
        assert port.read_until(b"ERROR\r").endswith(b"OK,LOFF\rERROR\r")
    assert scanner.triggers_received == 2


def test_honeywell_serial_trigger(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("honeywell-serial-trigger")
    with open_port(scanner.path) as port:
        port.write(b"\x16T\r")
        wait_until(lambda: scanner.triggers_received == 1)
        scanner.scan("RR287043775IN")
        assert port.read_until(b"\r\n") == b"RR287043775IN\r\n"


def test_sorter_records_and_acknowledges_lane_commands(pty_bench: PtyBench) -> None:
    sorter = pty_bench.sorter()
    with open_port(sorter.path) as port:
        port.write(b"DIV P1 2\r\n")
        assert port.read_until(b"\r\n") == b"ACK P1 2\r\n"
        sorter.nak_reason = "JAM"
        port.write(b"DIV P2 3\r\n")
        assert port.read_until(b"\r\n") == b"NAK P2 3 JAM\r\n"
        sorter.send_full(1)
        sorter.send_clear(1)
        assert port.read_until(b"\r\n") == b"FULL 1\r\n"
        assert port.read_until(b"\r\n") == b"CLEAR 1\r\n"
        port.write(b"HELLO\r\n")
        wait_until(lambda: sorter.unknown_lines == [b"HELLO"])
    assert [(c.parcel_id, c.bin) for c in sorter.commands] == [("P1", "2"), ("P2", "3")]
    assert all(c.received_ns > 0 for c in sorter.commands)


def test_sorter_delayed_and_dropped_acks(pty_bench: PtyBench) -> None:
    sorter = pty_bench.sorter(ack_delay_s=0.05)
    with open_port(sorter.path) as port:
        port.write(b"DIV P1 1\r\n")
        assert sorter.wait_for_commands(1, READ_TIMEOUT_S)
        assert port.read_until(b"\r\n") == b"ACK P1 1\r\n"
        sorter.drop_acks = True
        port.write(b"DIV P2 1\r\n")
        assert len(sorter.wait_for_commands(2, READ_TIMEOUT_S)) == 2
        port.timeout = 0.1
        assert port.read(1) == b""


def test_silence_split_noise_and_glued_frames(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=1.0)
    with open_port(scale.path) as port:
        scale.silent = True
        port.write(b"S\r\n")
        wait_until(lambda: scale.received.endswith(b"S\r\n"))
        port.timeout = 0.1
        assert port.read(1) == b""
        port.timeout = READ_TIMEOUT_S
        scale.silent = False
        scale.split_pieces = 4
        assert port.write(b"SI\r\n") and port.read_until(b"\r\n") == b"S S      1.000 kg\r\n"
        scale.send_raw(b"\x00\xff~noise")
        scale.send_glued([b"S S      1.000 kg\r\n", b"S D      2.000 kg\r\n"])
        assert port.read_until(b"\r\n") == b"\x00\xff~noiseS S      1.000 kg\r\n"
        assert port.read_until(b"\r\n") == b"S D      2.000 kg\r\n"


def test_unplug_breaks_the_reader_and_replug_comes_back_on_the_same_link(
    pty_bench: PtyBench,
) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=1.0)
    first_slave = scale.slave_path
    port = open_port(scale.path)
    scale.unplug()
    assert not scale.path.exists()
    with pytest.raises(OSError):
        data = os.read(port.fileno(), 100)
        if data == b"":  # some kernels report EOF instead of EIO
            raise OSError("end of file")
    port.close()
    scale.replug()
    assert os.path.realpath(scale.path) == scale.slave_path
    assert scale.slave_path is not None and first_slave is not None
    with open_port(scale.path) as again:
        assert again.write(b"SI\r\n") and again.read_until(b"\r\n") == b"S S      1.000 kg\r\n"


def test_stop_closes_every_descriptor(pty_bench: PtyBench) -> None:
    before = len(os.listdir("/proc/self/fd"))
    scale = pty_bench.scale("toledo-continuous", weight_kg=1.0)
    scale.stop()
    assert not scale.path.exists()
    assert len(os.listdir("/proc/self/fd")) == before
