"""Identifier parsing: S10 and GS1 check digits, element strings, human-readable form."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sorting.identifiers import (
    GS,
    gs1_check_digit,
    parse_identifier,
    s10_check_digit,
)

GS1_EXAMPLE = "]C1003761303211091034203102001250<GS>42010115"


@pytest.mark.parametrize(
    ("data", "valid", "problem"),
    [
        ("RB123456785GB", True, None),
        ("RR287043775IN", True, None),
        ("RB123456786US", False, "invalid_check_digit"),
        ("EE000000005CN", True, None),  # weighted sum 0 -> 11 -> check digit 5
    ],
)
def test_s10_check_digit(data, valid, problem):
    identifier = parse_identifier(data)
    assert (identifier.kind, identifier.valid, identifier.problem) == ("s10", valid, problem)
    assert identifier.key == data
    assert identifier.fields["country"] == data[-2:]


def test_s10_check_digit_ten_becomes_zero():
    # Find a serial whose raw check is 10, so the rule "10 -> 0" is exercised for real.
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    serial = next(
        f"{n:08d}" for n in range(1000)
        if 11 - sum(int(c) * w for c, w in zip(f"{n:08d}", weights, strict=True)) % 11 == 10
    )
    assert s10_check_digit(serial) == 0
    assert parse_identifier(f"RB{serial}0GB").valid


@pytest.mark.parametrize(
    "data",
    [
        GS1_EXAMPLE,
        GS1_EXAMPLE.replace("<GS>", GS),
        "(00)376130321109103420(3102)001250(420)10115",
    ],
)
def test_gs1_example_in_every_form(data):
    identifier = parse_identifier(data)
    assert identifier.kind == "gs1" and identifier.valid
    assert identifier.key == "376130321109103420"
    assert identifier.weight_kg == pytest.approx(12.50)
    assert identifier.fields["420"] == "10115"


def test_gs1_symbology_given_separately():
    identifier = parse_identifier("003761303211091034203102001250", "]C1")
    assert identifier.valid and identifier.weight_kg == pytest.approx(12.5)


def test_gs1_without_gs_when_only_fixed_fields_precede():
    # A fixed-length field needs no <GS> after it; the last variable one ends at the end.
    identifier = parse_identifier("]d200376130321109103420421156200001")
    assert identifier.valid
    assert identifier.fields["421"] == "156200001"


def test_gs1_gs_after_fixed_field_is_accepted():
    assert parse_identifier("]Q300376130321109103420" + GS + "42010115").valid


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ("]C1003761303211091034213102001250", "invalid_check_digit"),  # SSCC check digit wrong
        ("]C10137613032110910", "invalid_check_digit"),  # GTIN check digit wrong
        ("]C100376130321109", "malformed_identifier"),  # SSCC too short
        ("]C1993761303211091034", "malformed_identifier"),  # AI 99 is not in the table
        ("]C1420", "malformed_identifier"),  # variable field with no value
        ("]C1421ABC123", "malformed_identifier"),  # AI 421 country must be 3 digits
        ("]C13102ABCDEF", "malformed_identifier"),  # weight must be digits
        ("]C1", "malformed_identifier"),
        ("(99)123", "malformed_identifier"),
        ("x(00)376130321109103420", "malformed_identifier"),
    ],
)
def test_bad_gs1(data, problem):
    identifier = parse_identifier(data)
    assert not identifier.valid
    assert identifier.problem == problem


def test_gtin_and_consignment_fields():
    gtin = "0" + "9506000134352"  # a GTIN-13 padded to 14 digits; its check digit is 2
    identifier = parse_identifier(f"]C101{gtin}401CONSIGN-1")
    assert identifier.valid
    assert identifier.key == "CONSIGN-1"  # the consignment number beats the trade item


@pytest.mark.parametrize("data", ["LP00123456789012", "SF1234567890", "YT2233445566778"])
def test_carrier_numbers_are_opaque_and_valid(data):
    identifier = parse_identifier(data)
    assert (identifier.kind, identifier.valid, identifier.key) == ("carrier", True, data)


@pytest.mark.parametrize("data", ["", None, "a b", "\x00\x01\x02\x03", "x" * 1000, "ab"])
def test_garbage_is_unknown_and_invalid(data):
    identifier = parse_identifier(data)
    assert identifier.kind == "unknown" and not identifier.valid and identifier.key is None


def test_non_gs1_aim_prefix_is_stripped():
    assert parse_identifier("]C0RB123456785GB").kind == "s10"


def test_gs1_check_digit_known_values():
    assert gs1_check_digit("37613032110910342") == 0
    assert gs1_check_digit("0950600013435") == 2


@given(st.text(max_size=80), st.one_of(st.none(), st.sampled_from(["]C1", "]d2", "]Q3", "]E0"])))
def test_parsing_never_raises(data, symbology):
    identifier = parse_identifier(data, symbology)
    assert identifier.valid is (identifier.problem is None)


@given(st.from_regex(r"\]C1(00\d{18}|310[0-5]\d{6}|420[0-9A-Z]{1,20}\x1d|01\d{14}){1,4}",
                     fullmatch=True))
def test_gs1_like_strings_never_raise(data):
    parse_identifier(data)


@pytest.mark.parametrize("data", ["]C100" + "²" * 18, "]C101" + "①" * 14, "]C13103" + "²" * 6,
                                  "CP" + "٣" * 9 + "CN"])
def test_digits_are_ascii_digits(data):
    # str.isdigit() takes superscripts and other scripts' digits, which int() may refuse.
    identifier = parse_identifier(data)
    assert not identifier.valid
    assert identifier.problem == "malformed_identifier"
    assert identifier.weight_kg is None


def test_the_kept_last_result_is_only_for_the_same_data_and_symbology():
    element_string = "0037613032110910342042010115"
    assert parse_identifier(element_string, "]C1").kind == "gs1"
    assert parse_identifier(element_string, None).kind == "carrier"  # not the GS1 result
    assert parse_identifier(element_string, "]C1").kind == "gs1"
    first = parse_identifier("RB123456785GB")
    assert parse_identifier("RB123456785GB") is first


@pytest.mark.parametrize(("data", "fields"), [
    ("]C110ABC\x1d2112\n", {"10": "ABC"}),  # a line feed is not the end of the data
    ("]C110" + "A" * 21, {}),  # over the AI's 20 characters
    ("]C110\x1d21X", {}),  # an empty variable-length value
    ("]C100376130321109103420\x1d\x1d01", {"00": "376130321109103420"}),  # one <GS> only
    ("]C110A\x1d10B", {"10": "A"}),  # the same AI twice
    ("]C142115X2", {}),  # AI 421 starts with three digits
])
def test_malformed_gs1_keeps_the_fields_read_before_the_problem(data, fields):
    identifier = parse_identifier(data)
    assert (identifier.kind, identifier.problem) == ("gs1", "malformed_identifier")
    assert dict(identifier.fields) == fields
