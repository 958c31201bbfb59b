"""Decoder behaviour that depends on a profile's settings, and the helpers behind the frames."""

from __future__ import annotations

from frames import toledo_frame

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import DecodeError, DeviceReply, LaneFull, Scan, SorterAck, Weight
from edge_agent.devices.profiles import GenericDivertDecode, NciDecode, ScannerDecode, ToledoDecode
from edge_agent.devices.scales import NciDecoder, ToledoDecoder, make_weight, toledo_checksum
from edge_agent.devices.scanners import ScannerDecoder, split_aim_id
from edge_agent.devices.sorter_protocol import GenericDivertDecoder


def frame(body: bytes, raw: bytes | None = None) -> Frame:
    return Frame(raw if raw is not None else body, body, 42)


def test_toledo_checksum_matches_the_documented_frames():
    documented = bytes.fromhex("022c30202020313233342020202020300d1b")
    assert toledo_frame(0x2C, 0x30, 0x20, b"  1234", b"     0") == documented
    assert toledo_checksum(documented[:-1]) == 0x1B
    assert toledo_checksum(bytes.fromhex("022c34202020313233342020202020300d")) == 0x17


def test_toledo_gram_extension_can_be_turned_off():
    raw = toledo_frame(0x2A, 0x20, 0x21, b"   500", b"     0")
    body = raw[1:16]
    grams = ToledoDecoder(ToledoDecode(protocol="toledo")).decode(frame(body, raw))
    never_grams = ToledoDecode(protocol="toledo", gram_extension=0)
    pounds = ToledoDecoder(never_grams).decode(frame(body, raw))
    assert (grams.unit, grams.value_kg) == ("g", 0.5)
    assert (pounds.unit, pounds.value_kg) == ("lb", round(500 * 0.45359237, 9))


def test_toledo_wrong_length_is_a_decode_error():
    decoder = ToledoDecoder(ToledoDecode(protocol="toledo"))
    message = decoder.decode(frame(b"\x2c\x30", b"\x02\x2c\x30\r\x00"))
    assert isinstance(message, DecodeError)
    assert "expected 15" in message.reason


def test_nci_status_byte_order_and_bits_are_settings():
    body = b"0012.34lb\r\n01\r"  # '0' then '1'
    normal = NciDecoder(NciDecode(protocol="nci")).decode(frame(body))
    assert isinstance(normal, Weight) and normal.status == "underload"  # byte 2 bit 0
    swapped = NciDecoder(NciDecode(protocol="nci", status_byte1_first=False)).decode(frame(body))
    assert isinstance(swapped, Weight)
    assert (swapped.status, swapped.stable) == ("ok", False)  # now byte 1 bit 0: motion
    # A model whose manual puts motion in bit 3 of byte 1 (and no error there).
    settings = NciDecode(protocol="nci", motion_bit=3, byte1_error_bits=(2,))
    moving = NciDecoder(settings).decode(frame(b"0001.00kg\r\n80\r"))
    assert isinstance(moving, Weight)
    assert (moving.status, moving.stable) == ("ok", False)


def test_nci_status_only_reply_lists_its_flags():
    message = NciDecoder(NciDecode(protocol="nci")).decode(frame(b"12\r"))
    assert message == DeviceReply("status 12: motion, over capacity", b"12\r", 42)


def test_units_convert_to_kg_and_unknown_units_are_errors():
    f = frame(b"")
    assert make_weight(f, 16.0, "oz", True).value_kg == 0.45359237
    assert make_weight(f, 1.0, "LB", True).value_kg == 0.45359237
    assert make_weight(f, 2.0, "t", True).value_kg == 2000.0
    assert make_weight(f, 500.0, "mg", True).value_kg == 0.0005
    assert isinstance(make_weight(f, 1.0, "pcs", True), DecodeError)


def test_aim_identifier_detection():
    assert split_aim_id("]C10103") == ("]C1", "0103")
    assert split_aim_id("]Q3https://x") == ("]Q3", "https://x")
    assert split_aim_id("]C") == (None, "]C")
    assert split_aim_id("]1C0") == (None, "]1C0")
    assert split_aim_id("RB123") == (None, "RB123")


def test_scanner_settings():
    off = ScannerDecoder(ScannerDecode(protocol="scanner", aim_ids="off"))
    assert off.decode(frame(b"]C1ABC")) == Scan("]C1ABC", False, None, b"]C1ABC", 42)
    custom = ScannerDecoder(ScannerDecode(protocol="scanner", no_read=["???????"]))
    assert custom.decode(frame(b"\x02???????")).no_read  # Datalogic tunnel style, STX stripped
    assert not custom.decode(frame(b"NOREAD")).no_read
    utf8 = ScannerDecoder(ScannerDecode(protocol="scanner", encoding="utf-8"))
    assert utf8.decode(frame("上海 200000".encode())).data == "上海 200000"
    default = ScannerDecoder(ScannerDecode(protocol="scanner"))
    assert isinstance(default.decode(frame(b"\r\n")), DecodeError)
    assert isinstance(default.decode(frame(b"]C1")), DecodeError)
    assert default.decode(frame(b"]C0NOREAD")).no_read


def test_generic_divert_edge_cases():
    decoder = GenericDivertDecoder(GenericDivertDecode(protocol="generic-divert"))
    assert decoder.decode(frame(b"NAK p1 5")) == SorterAck("p1", 5, False, b"NAK p1 5", 42)
    assert decoder.decode(frame(b"FULL 1")) == LaneFull(1, True, b"FULL 1", 42)
    for bad in (b"ACK p1 5 extra", b"ACK p1 100", b"FULL 0", b"ACK " + b"x" * 33 + b" 5",
                b"ack p1 5", b"ACK p.1 5", b"CLEAR", b""):
        assert isinstance(decoder.decode(frame(bad)), DecodeError), bad
