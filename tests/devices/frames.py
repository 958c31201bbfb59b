"""Recorded frames for every firmware profile, with what each must decode to.

Each sample says where it comes from:
- "seen": verbatim in a vendor manual or a public test suite (see docs/PROTOCOLS.md);
- "built": assembled from a documented layout (docs/PROTOCOLS.md's built examples, or the layout);
- "own": built here to cover a case the documents describe without an example.

`expect` lists the messages the frame decodes to, each as the fields that must match
`message_to_dict` (floats compared to 1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    profile: str
    raw: bytes
    expect: tuple[dict, ...]
    origin: str


def weight(value, unit, value_kg, stable=True, status="ok", net=False) -> dict:
    return {
        "kind": "weight",
        "value": value,
        "unit": unit,
        "value_kg": value_kg,
        "stable": stable,
        "status": status,
        "net": net,
    }


def scan(data, symbology=None, no_read=False) -> dict:
    return {"kind": "scan", "data": data, "symbology": symbology, "no_read": no_read}


def dws(barcodes=(), weight_kg=None, dims=(None, None, None), volume_cm3=None,
        legal_for_trade=None, problem=None) -> dict:
    length, width, height = dims
    return {"kind": "dws_record", "barcodes": tuple(barcodes), "no_read": not barcodes,
            "weight_kg": weight_kg, "length_mm": length, "width_mm": width, "height_mm": height,
            "volume_cm3": volume_cm3, "legal_for_trade": legal_for_trade, "problem": problem}


def cubiscan(body: str) -> bytes:
    """A Cubiscan-style reply as the unit frames it: STX, body, ETX CR LF."""
    return b"\x02" + body.encode("latin-1") + b"\x03\r\n"


def reply(text) -> dict:
    return {"kind": "reply", "text": text}


ERROR = {"kind": "error"}


def host(kind: int, seq: int, body: object = None, version: int = 1) -> bytes:
    """A sorter-host message: A5 5A, version, type, sequence, length, then the body as sent."""
    import json

    payload = body if isinstance(body, bytes) else json.dumps(body or {}).encode()
    return (b"\xa5\x5a" + bytes([version, kind]) + seq.to_bytes(4, "big")
            + len(payload).to_bytes(4, "big") + payload)


REQUEST_BODY = {"tracking": "T000123", "barcodes": ["RB123456785GB", "RB123456785GB", "LP9"],
                "weight_kg": 1.25, "length_mm": 300, "width_mm": 200, "height_mm": None,
                "pass": 2, "deadline_ms": 800}
LB = 0.45359237


def toledo_frame(
    a: int, b: int, c: int, weight: bytes, tare: bytes, checksum: bool = True
) -> bytes:
    """STX, status A B C, 6-digit weight, 6-digit tare, CR and (optionally) the checksum byte."""
    assert len(weight) == 6 and len(tare) == 6
    frame = bytes([0x02, a, b, c]) + weight + tare + b"\r"
    return frame + bytes([-sum(frame) & 0x7F]) if checksum else frame


def with_parity(data: bytes, even: bool = True) -> bytes:
    """7-bit characters as an 8N1 port reads 7E1 (or 7O1) output: parity in bit 7."""
    out = bytearray()
    for byte in data:
        ones = bin(byte).count("1") % 2
        parity = ones if even else 1 - ones
        out.append(byte | parity << 7)
    return bytes(out)


def _s(profile: str, raw: bytes, origin: str, *expect: dict) -> Sample:
    return Sample(profile, raw, tuple(expect), origin)


SAMPLES: list[Sample] = [
    # --- mt-sics -------------------------------------------------------------------------------
    _s("mt-sics", b"S S     100.00 g\r\n", "seen", weight(100.0, "g", 0.1)),
    _s("mt-sics", b"S D     129.07 g\r\n", "seen", weight(129.07, "g", 0.12907, stable=False)),
    _s("mt-sics", b"S S     129.07 g\r\n", "seen", weight(129.07, "g", 0.12907)),
    _s("mt-sics", b"S D    -0.6800 g\r\n", "built", weight(-0.68, "g", -0.00068, stable=False)),
    _s("mt-sics", b"S S    12.345 kg\r\n", "own", weight(12.345, "kg", 12.345)),
    _s("mt-sics", b"S S      2.500 lb\r\n", "own", weight(2.5, "lb", round(2.5 * LB, 9))),
    _s("mt-sics", b"S I\r\n", "built", weight(None, "", None, stable=False, status="error")),
    _s("mt-sics", b"S +\r\n", "built", weight(None, "", None, stable=False, status="overload")),
    _s("mt-sics", b"S -\r\n", "built", weight(None, "", None, stable=False, status="underload")),
    _s("mt-sics", b"S S Error 10\r\n", "built",
       weight(None, "", None, stable=False, status="error")),
    _s("mt-sics", b"Z A\r\n", "built", reply("Z A")),
    _s("mt-sics", b"ES\r\n", "built", reply("ES")),
    _s("mt-sics", b'I4 A "1234567"\r\n', "built", reply('I4 A "1234567"')),
    # A public library tests with this; no real balance sends status A on S.
    _s("mt-sics", b"S A 1.234 g\r\n", "seen", ERROR),
    _s("mt-sics", b"S S     100.00 furlong\r\n", "own", ERROR),
    # --- mt-sics-continuous (SIR stream: SI replies) -------------------------------------------
    _s("mt-sics-continuous", b"S D      0.512 kg\r\n", "own",
       weight(0.512, "kg", 0.512, stable=False)),
    _s("mt-sics-continuous", b"S S      1.250 kg\r\n", "own", weight(1.25, "kg", 1.25)),
    _s("mt-sics-continuous", b"C A\r\n", "built", reply("C A")),
    # --- toledo-continuous ---------------------------------------------------------------------
    _s(
        "toledo-continuous",
        bytes.fromhex("022c30202020313233342020202020300d1b"),
        "built",  # docs/PROTOCOLS.md: 12.34 kg gross, stable, tare 0
        weight(12.34, "kg", 12.34),
    ),
    _s(
        "toledo-continuous",
        bytes.fromhex("022c34202020313233342020202020300d17"),
        "built",  # docs/PROTOCOLS.md: out of range, otherwise the same
        weight(12.34, "kg", 12.34, stable=False, status="overload"),
    ),
    # zero-padded, net, negative, motion, lb, decimal codes, grams: own frames from the layout
    _s("toledo-continuous", toledo_frame(0x2C, 0x31, 0x20, b"001234", b"000100"), "own",
       weight(12.34, "kg", 12.34, net=True)),
    _s("toledo-continuous", toledo_frame(0x2C, 0x32, 0x20, b"   250", b"     0"), "own",
       weight(-2.5, "kg", -2.5)),
    _s("toledo-continuous", toledo_frame(0x2B, 0x28, 0x20, b" 12345", b"     0"), "own",
       weight(1234.5, "lb", round(1234.5 * LB, 9), stable=False)),
    _s("toledo-continuous", toledo_frame(0x2D, 0x30, 0x20, b"012345", b"000000"), "own",
       weight(12.345, "kg", 12.345)),
    _s("toledo-continuous", toledo_frame(0x28, 0x30, 0x20, b"   123", b"     0"), "own",
       weight(12300.0, "kg", 12300.0)),
    _s("toledo-continuous", toledo_frame(0x2A, 0x20, 0x21, b"   500", b"     0"), "own",
       weight(500.0, "g", 0.5)),
    _s("toledo-continuous", toledo_frame(0x2C, 0x70, 0x20, b"  1234", b"     0"), "own",
       weight(12.34, "kg", 12.34, stable=False, status="error")),  # not zeroed since power-up
    _s("toledo-continuous", toledo_frame(0x2C, 0x36, 0x20, b"------", b"     0"), "own",
       weight(None, "kg", None, stable=False, status="underload")),
    # 7E1 output read on an 8N1 port: the parity bit is cleared before framing (line.mask_bit7)
    _s("toledo-continuous", with_parity(bytes.fromhex("022c30202020313233342020202020300d1b")),
       "built", weight(12.34, "kg", 12.34)),
    # checksum wrong (last byte 0x1c instead of 0x1b)
    _s("toledo-continuous", bytes.fromhex("022c30202020313233342020202020300d1c"), "own", ERROR),
    # --- nci-scp01 -----------------------------------------------------------------------------
    _s("nci-scp01", b"\n0012.34lb\r\n00\r\x03", "built",
       weight(12.34, "lb", round(12.34 * LB, 9))),
    _s("nci-scp01", b"\n0012.34lb\r\n10\r\x03", "built",  # byte 1 bit 0: motion
       weight(12.34, "lb", round(12.34 * LB, 9), stable=False)),
    _s("nci-scp01", b"\n0005.50kg\r\n20\r\x03", "own", weight(5.5, "kg", 5.5)),  # at zero flag only
    _s("nci-scp01", b"\n0000.75oz\r\n00\r\x03", "own",
       weight(0.75, "oz", round(0.75 * 0.028349523125, 9))),
    _s("nci-scp01", b"\n^^^^^^lb\r\n02\r\x03", "built",
       weight(None, "lb", None, stable=False, status="overload")),
    _s("nci-scp01", b"\n______lb\r\n01\r\x03", "built",
       weight(None, "lb", None, stable=False, status="underload")),
    _s("nci-scp01", b"\n------lb\r\n00\r\x03", "built",
       weight(None, "lb", None, stable=False, status="error")),
    _s("nci-scp01", b"\n0001.00kg\r\n40\r\x03", "own",  # byte 1 bit 2: RAM error
       weight(1.0, "kg", 1.0, stable=False, status="error")),
    _s("nci-scp01", b"\n00\r\x03", "built", reply("status 00")),
    _s("nci-scp01", b"\n?\r\x03", "built", reply("?")),
    _s("nci-scp01", b"\n 012.34LB\r00\x03", "built",  # SCP-12 layout
       weight(12.34, "LB", round(12.34 * LB, 9))),
    _s("nci-scp01", b"\n0012.34lb\r\n#!\r\x03", "own", ERROR),
    # --- sma-scp0499 ---------------------------------------------------------------------------
    _s("sma-scp0499", b"\n 1G       5.025lb \r", "built",
       weight(5.025, "lb", round(5.025 * LB, 9))),
    _s("sma-scp0499", b"\n 1NM      7.650kg \r", "built",
       weight(7.65, "kg", 7.65, stable=False, net=True)),
    _s("sma-scp0499", b"\nZ1G       0.000kg \r", "own", weight(0.0, "kg", 0.0)),
    _s("sma-scp0499", b"\nO1G      ------kg \r", "own",
       weight(None, "kg", None, stable=False, status="overload")),
    _s("sma-scp0499", b"\nE1G      ------kg \r", "own",
       weight(None, "kg", None, stable=False, status="error")),
    _s("sma-scp0499", b"\n 1T       1.000kg \r", "own", reply("tare 1.000 kg")),
    _s("sma-scp0499", b"\n?\r", "built", reply("?")),
    _s("sma-scp0499", b"\nX1G       5.025lb \r", "own", ERROR),
    # --- and-standard --------------------------------------------------------------------------
    _s("and-standard", b"ST,+00081.72  g\r\n", "seen", weight(81.72, "g", 0.08172)),
    _s("and-standard", b"US,-00183.96  g\r\n", "seen",
       weight(-183.96, "g", -0.18396, stable=False)),
    _s("and-standard", b"OL,+9999999E+19\r\n", "seen",
       weight(None, "", None, stable=False, status="overload")),
    _s("and-standard", b"ST,GS,+0012345kg\r\n", "seen", weight(12345.0, "kg", 12345.0)),
    _s("and-standard", b"ST,NT,+001.250kg\r\n", "own", weight(1.25, "kg", 1.25, net=True)),
    _s("and-standard", b"OL,GS,+    .  kg\r\n", "seen",
       weight(None, "kg", None, stable=False, status="overload")),
    _s("and-standard", b"QT,+0000123 PC\r\n", "own", reply("QT,+0000123 PC")),
    _s("and-standard", b"EC,E1\r\n", "own", reply("EC,E1")),
    _s("and-standard", b"XX,+00081.72  g\r\n", "own", ERROR),
    # --- generic-scanner -----------------------------------------------------------------------
    _s("generic-scanner", b"]C1003761303211091034203102001250\x1d42010115\r\n", "seen",
       scan("003761303211091034203102001250\x1d42010115", "]C1")),
    _s("generic-scanner", b"RB123456785GB\r", "built", scan("RB123456785GB")),
    _s("generic-scanner", b"]E04006381333931\n", "own", scan("4006381333931", "]E0")),
    _s("generic-scanner", b"LP00123456789012\r\n", "own", scan("LP00123456789012")),
    _s("generic-scanner", b"NOREAD\r\n", "seen", scan("", no_read=True)),
    _s("generic-scanner", b"NR\r", "seen", scan("", no_read=True)),
    # --- zebra-ds: no terminator; a read ends with silence on the line ------------------------
    _s("zebra-ds", b"4006381333931", "built", scan("4006381333931")),
    _s("zebra-ds", b"]C1003761303211091034203102001250\x1d42010115", "built",
       scan("003761303211091034203102001250\x1d42010115", "]C1")),
    _s("zebra-ds", b"RR287043775IN", "built", scan("RR287043775IN")),
    # --- honeywell-serial-trigger: CR/LF suffix, or silence ------------------------------------
    _s("honeywell-serial-trigger", b"RB123456785GB\r\n", "built", scan("RB123456785GB")),
    _s("honeywell-serial-trigger", b"NR\r\n", "seen", scan("", no_read=True)),
    _s("honeywell-serial-trigger", b"]d201095011015300031721123110AB12", "own",
       scan("01095011015300031721123110AB12", "]d2")),
    # --- keyence-fixed -------------------------------------------------------------------------
    _s("keyence-fixed", b"OK,LON\r", "seen", reply("OK,LON")),
    _s("keyence-fixed", b"ERROR\r", "seen", scan("", no_read=True)),
    _s("keyence-fixed", b"SH123456789CN\r", "own", scan("SH123456789CN")),
    _s("keyence-fixed", b"ER,LON,01\r", "own", reply("ER,LON,01")),
    # --- generic-dws: the combined DWS record (layout: docs/PROTOCOLS.md, "DWS units") -------
    _s("generic-dws", b"LP00000000000017,4.200,300,200,150,9000,2026-12-03 10:15:02.123\r\n",
       "built", dws(["LP00000000000017"], 4.2, (300.0, 200.0, 150.0), 9000.0)),
    _s("generic-dws", b"RB123456785GB,LP00000000000017,1.250,250,180,90,4050,1733220902\r\n",
       "built", dws(["RB123456785GB", "LP00000000000017"], 1.25, (250.0, 180.0, 90.0), 4050.0)),
    _s("generic-dws", b"noread,0.800,200,150,100,3000,1733220903\r\n", "built",
       dws([], 0.8, (200.0, 150.0, 100.0), 3000.0)),
    _s("generic-dws", b"NoRead,0.800,200,150,100,3000,1733220903\n", "own",
       dws([], 0.8, (200.0, 150.0, 100.0), 3000.0)),
    _s("generic-dws", b"?,1.0,100,100,100,,1733220903\r", "own",
       dws([], 1.0, (100.0, 100.0, 100.0))),
    # stacked boxes, not measured: zero sides (or empty fields) are no dimensions
    _s("generic-dws", b"LP00000000000018,2.000,0,0,0,0,1733220904\r\n", "own",
       dws(["LP00000000000018"], 2.0, problem="no_dimensions")),
    _s("generic-dws", b"LP00000000000018,2.000,,,,,1733220904\r\n", "own",
       dws(["LP00000000000018"], 2.0, problem="no_dimensions")),
    _s("generic-dws", b"LP00000000000019,noread,120,80,40,384,1733220905\r\n", "own",
       dws(["LP00000000000019"], None, (120.0, 80.0, 40.0), 384.0)),
    _s("generic-dws", b"]C1003761303211091034203102001250\x1d42010115,12.5,400,300,200,24000,0"
       b"\r\n", "own", dws(["]C1003761303211091034203102001250\x1d42010115"], 12.5,
                              (400.0, 300.0, 200.0), 24000.0)),
    _s("generic-dws", b"LP00000000000020,heavy,100,100,100,1000,1733220906\r\n", "own", ERROR),
    _s("generic-dws", b"LP00000000000020,-1.0,100,100,100,1000,1733220906\r\n", "own", ERROR),
    _s("generic-dws", b"LP00000000000020,1.0,100,100,1733220906\r\n", "own", ERROR),
    _s("generic-dws", b"LP00000000000020,nan,100,100,100,1000,1733220906\r\n", "own", ERROR),
    # --- cubiscan-style: the measure reply (layout: docs/PROTOCOLS.md, "DWS units") ----------
    _s("cubiscan-style", cubiscan("MAC004600,L020.0,W010.0,H030.0,M,K500.50,D510.50,M,F0010,I"),
       "seen", dws([], 500.5, (200.0, 100.0, 300.0))),
    _s("cubiscan-style", cubiscan("MNCZ"), "seen", dws([], problem="zeroing_error")),
    _s("cubiscan-style", cubiscan("MNMC"), "built", dws([], problem="corner_sensor")),
    _s("cubiscan-style", cubiscan("MAM004600,L012.0,W008.5,H004.0,E,K002.50,D001.20,E,F0166,D"),
       "built", dws([], round(2.5 * LB, 6), (304.8, 215.9, 101.6))),
    _s("cubiscan-style", cubiscan("MAM004600,L~99.9,W010.0,H030.0,M,K001.25,D002.00,M,F6000,I"),
       "built", dws([], 1.25, problem="over_range")),
    _s("cubiscan-style", cubiscan("MAM004600,L020.0,W010.0,H030.0,M,K-00.05,D000.10,M,F6000,I"),
       "built", dws([], 0.05, (200.0, 100.0, 300.0), legal_for_trade=False)),
    _s("cubiscan-style", cubiscan("?N"), "built", reply("?N")),
    _s("cubiscan-style", cubiscan("ZA"), "built", reply("ZA")),
    _s("cubiscan-style", cubiscan("MAC004600,L020.0,W010.0,H030.0,M,K500.50"), "own", ERROR),
    _s("cubiscan-style", cubiscan("MAC004600,L020.0,W010.0,H030.0,X,K500.50,D510.50,M,F0010,I"),
       "own", ERROR),
    # --- generic-divert ------------------------------------------------------------------------
    _s("generic-divert", b"ACK 0190f3a2b4c57d8e9f0a1b2c3d4e5f60 3\r\n", "own",
       {"kind": "sorter_ack", "parcel_id": "0190f3a2b4c57d8e9f0a1b2c3d4e5f60", "bin": 3,
        "accepted": True}),
    _s("generic-divert", b"NAK p-17 12 lane blocked by jam\r\n", "own",
       {"kind": "sorter_ack", "parcel_id": "p-17", "bin": 12, "accepted": False}),
    _s("generic-divert", b"FULL 3\r\n", "own", {"kind": "lane_full", "bin": 3, "full": True}),
    _s("generic-divert", b"CLEAR 99\r\n", "own", {"kind": "lane_full", "bin": 99, "full": False}),
    _s("generic-divert", b"ACK p1 0\r\n", "own", ERROR),
    _s("generic-divert", b"HELLO\r\n", "own", ERROR),
    # confirmations: what finally happened to a commanded parcel
    _s("generic-divert", b"SORTED p1 3 2026-12-03T04:05:06.123Z\r\n", "own",
       {"kind": "sorter_outcome", "parcel_id": "p1", "outcome": "sorted", "bin": 3,
        "actual_bin": 3, "sorter_time": "2026-12-03T04:05:06.123Z"}),
    _s("generic-divert", b"LATE p1 3 -\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "too_late", "bin": 3, "actual_bin": None}),
    _s("generic-divert", b"LATE p1 3 9\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "too_late", "actual_bin": 9}),
    _s("generic-divert", b"REDIRECT p1 3 FULL 4\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "bin_full", "actual_bin": 4, "sorter_time": None}),
    _s("generic-divert", b"REDIRECT p1 3 DISABLED 4 2026-12-03T04:05:06Z\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "bin_disabled", "actual_bin": 4,
        "sorter_time": "2026-12-03T04:05:06Z"}),
    _s("generic-divert", b"REDIRECT p1 3 JAMMED -\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "bin_jammed", "actual_bin": None}),
    _s("generic-divert", b"RECIRC p1 3 2\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "recirculated", "pass_count": 2}),
    _s("generic-divert", b"LOST p1 3\r\n", "own",
       {"kind": "sorter_outcome", "outcome": "tracking_lost", "actual_bin": None}),
    _s("generic-divert", b"SORTED p1 3\r\n", "own", ERROR),
    _s("generic-divert", b"SORTED p1 3 2026-13-45T04:05:06Z\r\n", "own", ERROR),
    _s("generic-divert", b"REDIRECT p1 3 FULL 0\r\n", "own", ERROR),
    _s("generic-divert", b"REDIRECT p1 3 BROKEN 4\r\n", "own", ERROR),
    _s("generic-divert", b"RECIRC p1 3 0\r\n", "own", ERROR),
    _s("generic-divert", b"LOST p1 3 extra\r\n", "own", ERROR),
    # --- sorter-host-json (the sorter tracks, the agent answers) ------------------------------
    _s("sorter-host-json", host(0x01, 1), "own", {"kind": "link", "seq": 1, "heartbeat": True}),
    _s("sorter-host-json", host(0x02, 0xFFFFFFFF), "own",
       {"kind": "link", "seq": 0xFFFFFFFF, "heartbeat": False}),
    _s("sorter-host-json", host(0x10, 7, REQUEST_BODY), "own",
       {"kind": "destination_request", "seq": 7, "tracking": "T000123",
        "barcodes": ("RB123456785GB", "LP9"), "weight_kg": 1.25, "length_mm": 300.0,
        "width_mm": 200.0, "height_mm": None, "pass_count": 2, "deadline_ms": 800}),
    _s("sorter-host-json", host(0x10, 8, {"tracking": "T9", "barcodes": []}), "own",
       {"kind": "destination_request", "barcodes": (), "weight_kg": None, "pass_count": 1,
        "deadline_ms": 500}),
    _s("sorter-host-json", host(0x12, 9, {"tracking": "T000123", "status": "sorted", "chute": 1,
                                          "time": "2026-12-03T04:05:06.123Z"}), "own",
       {"kind": "sort_report", "seq": 9, "outcome": "sorted", "chute": 1, "final": True,
        "sorter_time": "2026-12-03T04:05:06.123Z"}),
    _s("sorter-host-json", host(0x12, 10, {"tracking": "T1", "status": "recirculated",
                                           "chute": None, "pass": 1, "final": False}), "own",
       {"kind": "sort_report", "outcome": "recirculated", "chute": None, "final": False}),
    _s("sorter-host-json", host(0x12, 11, {"tracking": "T1", "status": "chute_full",
                                           "chute": 4}), "own",
       {"kind": "sort_report", "outcome": "bin_full", "chute": 4}),
    _s("sorter-host-json", host(0x01, 1, version=2), "own", ERROR),
    _s("sorter-host-json", host(0x33, 1), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, b"{not json"), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, b"\xff\xfe"), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, [1, 2]), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, {"barcodes": ["A"]}), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, {"tracking": "T", "weight_kg": -1}), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, {"tracking": "T", "pass": 0}), "own", ERROR),
    _s("sorter-host-json", host(0x10, 1, {"tracking": "T", "barcodes": "A"}), "own", ERROR),
    _s("sorter-host-json", host(0x12, 1, {"tracking": "T", "status": "vanished"}), "own", ERROR),
    _s("sorter-host-json", host(0x12, 1, {"tracking": "T", "status": "sorted", "chute": 0}),
       "own", ERROR),
    _s("sorter-host-json", host(0x12, 1, {"tracking": "T", "status": "sorted",
                                          "time": "2026-02-30T00:00:00Z"}), "own", ERROR),
]

# Garbage to put around frames, per profile: (before, after, extra messages allowed).
# Marker-framed protocols skip garbage without a start marker silently. Line protocols can only
# take garbage as a line of its own: the line becomes its own (error or junk) message, and a
# trailing partial line stays buffered.
GARBAGE: dict[str, tuple[bytes, bytes, bool]] = {
    "toledo-continuous": (b"\x00\xff\r\x03 12 \r\x1b", b"\x7f\x0d\x03junk", False),
    "nci-scp01": (b"\x00\xff\r\x03\x02 1 ", b"\x00\x03\r", False),
    "sma-scp0499": (b"\x00\xff\r\x03 1G  ", b"\x00\r junk", False),
    "mt-sics": (b"\x00\xff\x13junk\r\n", b"\x00S S  1", True),
    "mt-sics-continuous": (b"\x00\xff\x13junk\r\n", b"\x00S S  1", True),
    "and-standard": (b"\x00\xff\x13junk\r\n", b"\x00ST,+0", True),
    "generic-divert": (b"\x00\xff\x13junk\r\n", b"\x00ACK p", True),
    "generic-scanner": (b"\x00\xff\x13junk\r\n", b"\x00\xff", True),
    "keyence-fixed": (b"\x00\xff\x13junk\r", b"\x00\xff", True),
    "honeywell-serial-trigger": (b"\x00\xff\x13junk\r\n", b"", True),
    "zebra-ds": (b"", b"", True),  # idle-gap: garbage is a read of its own, tested apart
    "generic-dws": (b"\x00\xff\x13junk,1,2\r\n", b"\x00LP1,", True),
    "cubiscan-style": (b"\x00\xff\r\x03\r MAC,L020.0 \n", b"\x7f\x03\r\njunk", False),
    "sorter-host-json": (b"\x00\xff\x13junk\xa5\x00Z", b"\xa5\x5a\x01\x10\x00", False),
}

IDLE_GAP_PROFILES = frozenset({"zebra-ds", "honeywell-serial-trigger"})


def samples_for(profile: str) -> list[Sample]:
    return [sample for sample in SAMPLES if sample.profile == profile]
