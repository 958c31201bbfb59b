"""DWS decoders: what their profile settings change, and dimensioner states as inputs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge_agent.devices.dws import CubiscanDecoder, DwsDelimitedDecoder
from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import DecodeError, DwsRecord
from edge_agent.devices.profiles import CubiscanDecode, DwsDelimitedDecode

LB = 0.45359237


def frame(body: bytes) -> Frame:
    return Frame(body + b"\r\n", body, 42)


def delimited(body: bytes, **settings) -> DwsRecord | DecodeError:
    decoder = DwsDelimitedDecoder(DwsDelimitedDecode(protocol="dws-delimited", **settings))
    return decoder.decode(frame(body))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("settings", "body", "weight_kg", "sides_mm", "volume_cm3"),
    [
        ({}, b"A1,1.5,300,200,100,6000,t", 1.5, (300.0, 200.0, 100.0), 6000.0),
        ({"weight_unit": "g"}, b"A1,1500,300,200,100,6000,t", 1.5, (300.0, 200.0, 100.0), 6000.0),
        ({"weight_unit": "lb", "length_unit": "in", "volume_unit": "in3"},
         b"A1,2,10,5,4,200,t", round(2 * LB, 6), (254.0, 127.0, 101.6), round(200 * 16.387064, 6)),
        ({"length_unit": "cm", "volume": False}, b"A1,1.5,30,20,10,t", 1.5,
         (300.0, 200.0, 100.0), None),
        ({"timestamp": False}, b"A1,1.5,300,200,100,6000", 1.5, (300.0, 200.0, 100.0), 6000.0),
        ({"volume": False, "timestamp": False, "delimiter": ";"}, b"A1;1.5;300;200;100", 1.5,
         (300.0, 200.0, 100.0), None),
        ({"delimiter": "\t", "volume_unit": "m3"}, b"A1\t1.5\t300\t200\t100\t0.006\tt", 1.5,
         (300.0, 200.0, 100.0), 6000.0),
    ],
)
def test_units_delimiter_and_optional_fields_are_settings(
    settings, body, weight_kg, sides_mm, volume_cm3
):
    record = delimited(body, **settings)
    assert isinstance(record, DwsRecord), record
    assert record.barcodes == ("A1",)
    assert record.weight_kg == pytest.approx(weight_kg)
    assert (record.length_mm, record.width_mm, record.height_mm) == pytest.approx(sides_mm)
    assert record.volume_cm3 == (None if volume_cm3 is None else pytest.approx(volume_cm3))


def test_the_same_record_without_the_optional_fields_is_short_of_fields():
    # volume and timestamp expected but not sent: five fields cannot hold a barcode and four
    # numbers and two more, and the error says what was expected
    record = delimited(b"A1,1.5,300,200,100")
    assert isinstance(record, DecodeError)
    assert "5 fields, expected at least 7" in record.reason
    assert "volume, timestamp" in record.reason


def test_no_read_markers_are_settings_and_drop_out_among_labels():
    assert delimited(b"NR,1,1,1,1,1,t").barcodes == ("NR",)  # not a marker by default
    record = delimited(b"NR,1,1,1,1,1,t", no_read=["NR"])
    assert (record.barcodes, record.no_read) == ((), True)
    # a marker beside a real label: the label is what was read
    record = delimited(b"noread,A1,,B2,1,1,1,1,1,t")
    assert (record.barcodes, record.no_read) == (("A1", "B2"), False)


def test_one_side_missing_is_no_dimensions_at_all():
    record = delimited(b"A1,1.0,300,,100,,t")
    assert (record.length_mm, record.width_mm, record.height_mm) == (None, None, None)
    assert record.problem == "no_dimensions"
    assert record.legal_for_trade is None  # the delimited format has no such flag


def cubiscan(body: bytes, **settings) -> object:
    return CubiscanDecoder(CubiscanDecode(protocol="cubiscan", **settings)).decode(
        Frame(b"\x02" + body + b"\x03\r", body, 42))


def test_cubiscan_layout_is_a_setting_and_an_id_section_is_the_label():
    fields = ["id", "skip", "length", "width", "height", "dimension_unit", "weight",
              "weight_unit"]
    record = cubiscan(b"MARB123456785GB,C004600,L020.0,W010.0,H030.0,M,K001.25,M",
                      fields=fields)
    assert isinstance(record, DwsRecord), record
    assert (record.barcodes, record.no_read) == (("RB123456785GB",), False)
    assert (record.length_mm, record.width_mm, record.height_mm) == (200.0, 100.0, 300.0)
    assert record.weight_kg == 1.25
    # the default layout has ten sections: this reply has eight
    assert isinstance(cubiscan(b"MARB1,C004600,L020.0,W010.0,H030.0,M,K001.25,M"), DecodeError)


def test_cubiscan_units_behind_the_flags_are_settings():
    body = b"MAC004600,L020.0,W010.0,H030.0,M,K001.25,D001.00,M,F6000,I"
    record = cubiscan(body, metric_length_unit="mm", metric_weight_unit="g")
    assert (record.length_mm, record.weight_kg) == (20.0, 0.00125)


def test_cubiscan_under_range_weight_is_no_weight_saying_why():
    record = cubiscan(b"MAC004600,L020.0,W010.0,H030.0,M,K_00.00,D000.10,M,F6000,I")
    assert (record.weight_kg, record.length_mm, record.problem) == (None, 200.0, "under_range")


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"fields": ["length", "width", "height"]}, "'weight' is missing"),
        ({"fields": ["length", "width", "height", "weight", "length"]}, "more than once"),
        ({"fields": ["length", "width", "height", "weight", "colour"]}, "fields.4"),
    ],
)
def test_cubiscan_layouts_that_cannot_work_are_refused(settings, problem):
    with pytest.raises(ValidationError, match=problem):
        CubiscanDecode(protocol="cubiscan", **settings)


@pytest.mark.parametrize("delimiter", ["1", ".", "-", "\r", "ab", ""])
def test_a_delimiter_that_would_split_numbers_is_refused(delimiter):
    with pytest.raises(ValidationError):
        DwsDelimitedDecode(protocol="dws-delimited", delimiter=delimiter)


def test_diag_watch_describes_a_record_in_one_line():
    from edge_agent.cli.diag_format import describe

    record = delimited(b"RB123456785GB,LP1,1.25,300,200,100,6000,t")
    line = describe("dws", record)
    assert line.endswith("dws: dws 'RB123456785GB', 'LP1' 1.25 kg 300x200x100 mm")
    unmeasured = describe("dws", delimited(b"noread,noread,0,0,0,0,t"))
    assert unmeasured.endswith("dws no-read no weight not measured (no_dimensions)")


@pytest.mark.parametrize("weight", ["1_0", "1e3", "-2", "+2", "nan", "inf", "1.2.3", "0x10"])
def test_a_number_field_holds_plain_decimals_only(weight):
    record = delimited(f"A1,{weight},300,200,100,6000,t".encode())
    assert isinstance(record, DecodeError)
    assert record.reason.startswith(f"weight {weight!r} is not a measurement")
