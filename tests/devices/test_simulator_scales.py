"""Scale simulators over real ptys: their bytes match the layouts in docs/PROTOCOLS.md."""

from __future__ import annotations

import pytest
import serial
from support.pty_devices import PtyBench

from edge_agent.devices.simulators.scale import toledo_checksum

READ_TIMEOUT_S = 3.0


def open_port(path) -> serial.Serial:
    return serial.Serial(str(path), 9600, timeout=READ_TIMEOUT_S)


def ask(port: serial.Serial, command: bytes, until: bytes = b"\r\n") -> bytes:
    port.write(command)
    return port.read_until(until)


def test_toledo_checksum_matches_the_documented_example() -> None:
    frame = bytes.fromhex("022c30202020313233342020202020300d")
    assert toledo_checksum(frame) == 0x1B
    out_of_range = bytes.fromhex("022c34202020313233342020202020300d")
    assert toledo_checksum(out_of_range) == 0x17


def test_toledo_stream_frame_is_the_documented_18_bytes(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("toledo-continuous", weight_kg=12.34)
    assert scale.toledo_frame() == bytes.fromhex("022c30202020313233342020202020300d1b")
    with open_port(scale.path) as port:
        port.read_until(b"\x02")  # resynchronise on the next frame start
        frame = b"\x02" + port.read(17)
    assert frame == bytes.fromhex("022c30202020313233342020202020300d1b")


def test_toledo_without_checksum_motion_and_out_of_range(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("toledo-continuous", weight_kg=12.34, toledo_checksum=False)
    assert len(scale.toledo_frame()) == 17
    scale.set_weight(12.34, stable=False)
    assert scale.toledo_frame()[2] & 0x08  # motion bit
    scale.set_overload()
    assert scale.toledo_frame()[2] == 0x20 | 0x10 | 0x08 | 0x04


def test_mt_sics_replies(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=1.5)
    with open_port(scale.path) as port:
        assert ask(port, b"S\r\n") == b"S S      1.500 kg\r\n"
        assert ask(port, b"SI\r\n") == b"S S      1.500 kg\r\n"
        scale.set_weight(-0.68, stable=False)
        assert ask(port, b"SI\r\n") == b"S D     -0.680 kg\r\n"
        assert ask(port, b"S\r\n") == b"S I\r\n"  # never settles before the timeout
        assert ask(port, b"Z\r\n") == b"Z I\r\n"
        scale.set_weight(0.25)
        assert ask(port, b"Z\r\n") == b"Z A\r\n"
        assert ask(port, b"SI\r\n") == b"S S      0.000 kg\r\n"
        scale.set_overload()
        assert ask(port, b"S\r\n") == b"S +\r\n"
        assert ask(port, b"XYZ\r\n") == b"ES\r\n"


def test_mt_sics_value_sits_in_a_10_character_field(pty_bench: PtyBench) -> None:
    reply = pty_bench.scale("mt-sics", weight_kg=100.0).mt_sics_weight(immediate=True)
    assert reply[4:14] == b"   100.000"


def test_mt_sics_sir_streams_until_cancelled(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=2.0)
    with open_port(scale.path) as port:
        port.write(b"SIR\r\n")
        lines = [port.read_until(b"\r\n") for _ in range(3)]
        assert all(line == b"S S      2.000 kg\r\n" for line in lines)
        port.write(b"C\r\n")
        tail = port.read_until(b"C A\r\n")
        assert tail.endswith(b"C B\r\nC A\r\n")
    assert not scale.streaming


def test_nci_scp01_replies(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("nci-scp01", weight_kg=12.34)
    with open_port(scale.path) as port:
        assert ask(port, b"W\r", b"\x03") == b"\n0012.34kg\r\n00\r\x03"
        scale.set_weight(12.34, stable=False)
        assert ask(port, b"S\r", b"\x03") == b"\n10\r\x03"  # byte 1 bit 0: motion
        scale.set_overload()
        assert ask(port, b"W\r", b"\x03") == b"\n^^^^^^^kg\r\n12\r\x03"  # 2nd byte bit 1: over
        assert ask(port, b"Q\r", b"\x03") == b"\n?\r\x03"


def test_sma_scp0499_replies(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("sma-scp0499", weight_kg=5.025)
    with open_port(scale.path) as port:
        assert ask(port, b"\nW\r", b"\r") == b"\n 1G       5.025kg \r"
        scale.set_weight(7.65, stable=False)
        assert ask(port, b"\nW\r", b"\r") == b"\n 1GM      7.650kg \r"
        port.write(b"\nP\r")  # waits for stability, like the device
        scale.set_weight(7.65, stable=True)
        assert port.read_until(b"\r") == b"\n 1G       7.650kg \r"
        assert ask(port, b"\nX\r", b"\r") == b"\n?\r"


def test_and_standard_replies(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("and-standard", weight_kg=81.72)
    with open_port(scale.path) as port:
        reply = ask(port, b"Q\r\n")
        assert reply == b"ST,+0081.720 kg\r\n"
        assert len(reply) == 15 + 2
        scale.set_weight(-183.96, stable=False)
        assert ask(port, b"SI\r\n") == b"US,-0183.960 kg\r\n"
        scale.set_overload()
        assert ask(port, b"Q\r\n") == b"OL,+9999999E+19\r\n"


def test_scale_that_never_stabilises_keeps_reporting_motion(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=3.0)
    scale.never_stabilises = True
    with open_port(scale.path) as port:
        assert ask(port, b"S\r\n") == b"S I\r\n"
        assert ask(port, b"SI\r\n") == b"S D      3.000 kg\r\n"
        scale.set_weight(3.0, stable=True)  # the script says stable; the fault wins
        assert ask(port, b"SI\r\n") == b"S D      3.000 kg\r\n"


def test_unknown_scale_profile_is_refused() -> None:
    from edge_agent.devices.simulators import ScaleSimulator

    with pytest.raises(ValueError, match="no scale simulator"):
        ScaleSimulator("no-such-scale")
