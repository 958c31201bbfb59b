"""Rules files: the default set loads, bad files are refused with the rule and field named."""

import pytest

from edge_agent.sorting.rules import RulesError, default_rules, load_rules, parse_rules

GOOD = """
version = "test-1"
[lanes.A]
bin = 1
overflow = "B"
weight_limit_kg = 10
[lanes.B]
bin = 2
[lanes.EXCEPTION]
bin = 3
[[rules]]
id = "a"
lane = "A"
when = { country = ["CN"] }
[default]
lane = "EXCEPTION"
"""


def test_default_rules_load():
    rules = default_rules()
    assert {name: lane.bin for name, lane in rules.lanes.items()} == {
        "ZHUHAI": 1, "SHANGHAI": 2, "EXPORT": 3, "EXCEPTION": 4}
    assert rules.lanes["ZHUHAI"].weight_limit_kg == 30.0
    assert rules.lanes["ZHUHAI"].overflow == "SHANGHAI"
    assert rules.version


def test_text_and_file_give_the_same_rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    assert load_rules(path).model_dump() == parse_rules(GOOD).model_dump()


def _problems(text: str) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "r.toml")
    assert str(caught.value).startswith("r.toml: ")
    return caught.value.problems


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("when = { country = [\"CN\"] }", "when = { weight_max_kg = -1 }"),
         "rules[0].when.weight_max_kg: Input should be greater than or equal to 0"),
        (("when = { country = [\"CN\"] }", "when = { wieght_max_kg = 3 }"),
         "rules[0].when.wieght_max_kg: unknown setting (a typo?)"),
        (("when = { country = [\"CN\"] }", "when = { country = [\"CHN\"] }"),
         "rules[0].when.country: Value error, country 'CHN' must be ISO 3166 alpha-2, e.g. 'CN'"),
        (("when = { country = [\"CN\"] }", "when = { province = [\"Atlantis\"] }"),
         "rules[0].when.province: Value error, unknown province 'Atlantis'"),
        (("when = { country = [\"CN\"] }", "when = { time_before = \"25:00\" }"),
         "rules[0].when.time_before: Value error, time '25:00' is not a time of day"),
        (("when = { country = [\"CN\"] }", "when = { lane_open = [\"Q\"] }"),
         "rules[0].when.lane_open: unknown lane 'Q'"),
        (("lane = \"A\"\nwhen", "lane = \"NOPE\"\nwhen"), "rules[0].lane: unknown lane 'NOPE'"),
        (("overflow = \"B\"", "overflow = \"C\""), "lanes.A.overflow: unknown lane 'C'"),
        (("[lanes.B]\nbin = 2", "[lanes.B]\nbin = 1"), "lanes.B.bin: bin 1 is already lane A"),
        (("[lanes.B]\nbin = 2", "[lanes.B]\nbin = 2\noverflow = \"A\""),
         "lanes.A.overflow: overflow loop A -> B"),
        (("[lanes.A]\nbin = 1", "[lanes.A]\nbin = \"one\""),
         "lanes.A.bin: Input should be a valid integer, unable to parse string as an integer"),
        (("[default]\nlane = \"EXCEPTION\"",
          "[default]\nlane = \"EXCEPTION\"\nreason = \"Bad Reason\""),
         "default.reason: String should match pattern"),
        (("version = \"test-1\"", ""), "version: Field required"),
        (("[lanes.EXCEPTION]", "[lanes.EXC]"), "exception_lane: unknown lane 'EXCEPTION'"),
    ],
)
def test_bad_rules_name_the_place(edit, expected):
    old, new = edit
    assert old in GOOD
    problems = _problems(GOOD.replace(old, new, 1))
    assert any(p.startswith(expected) for p in problems), problems


def test_duplicate_rule_ids():
    # TOML keys after [default] would belong to it, so the second rule goes before it.
    text = GOOD.replace("[default]", '[[rules]]\nid = "a"\nlane = "B"\n[default]')
    assert "rules[1].id: 'a' is already rules[0]" in _problems(text)


def test_every_problem_is_reported_at_once():
    text = GOOD.replace('lane = "A"', 'lane = "X"').replace('overflow = "B"', 'overflow = "Y"')
    assert len(_problems(text)) == 2


@pytest.mark.parametrize(("data", "expected"), [
    ("version = [", "not valid TOML"),
    ("", "version: Field required"),
])
def test_unreadable_text(data, expected):
    assert expected in _problems(data)[0]


def test_missing_file(tmp_path):
    with pytest.raises(RulesError) as caught:
        load_rules(tmp_path / "absent.toml")
    assert caught.value.problems == ["file not found"]


def test_rules_are_frozen():
    rules = default_rules()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error type
        rules.version = "x"
