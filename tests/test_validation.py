"""The one translator of pydantic's errors into problems, in each dialect its callers use, and the
one error base every file and command reader raises."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field, ValidationError, field_validator

from edge_agent.devices.profiles import ProfileError
from edge_agent.errors import ConfigError, EdgeAgentError, ProblemsError
from edge_agent.sorting.manifest_entry import ManifestError
from edge_agent.sorting.rules import RulesError
from edge_agent.validation import StrictModel, UnionTag, problems_from


class Crlf(StrictModel):
    mode: Literal["crlf"]
    max_bytes: int = 64


class Fixed(StrictModel):
    mode: Literal["fixed"]
    length: int


class Rule(StrictModel):
    lane: str
    weight_max_kg: float = Field(default=1.0, gt=0)

    @field_validator("lane")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value.isupper():
            raise ValueError(f"lane {value!r} is not upper-case")
        return value


class Document(StrictModel):
    name: str
    rules: list[Rule] = Field(default_factory=list)
    framing: Annotated[Crlf | Fixed, Field(discriminator="mode")] | None = None


def problems(data: object, **style) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Document.model_validate(data)
    return problems_from(caught.value, **style)


def test_dotted_places_by_default_and_a_prefix_before_each():
    found = problems({"rules": [{"lane": "A", "weight_max_kg": 0}], "colour": 1})
    assert found == ["name: Field required",
                     "rules.0.weight_max_kg: Input should be greater than 0",
                     "colour: unknown setting (a typo?)"]
    assert problems({"name": "x", "typo": 1}, prefix="args") \
        == ["args.typo: unknown setting (a typo?)"]


def test_list_positions_in_brackets():
    assert problems({"name": "x", "rules": [{"lane": "A"}, {"lane": "b"}]}, list_positions=True) \
        == ["rules[1].lane: Value error, lane 'b' is not upper-case"]


def test_plain_words_and_union_tags_named_as_the_field_that_holds_them():
    unions = {"framing": UnionTag("mode", ("crlf", "fixed"))}
    assert problems({"rules": [{"lane": "b"}], "framing": {"mode": "fixed"}},
                    plain=True, unions=unions) == [
        "name: missing (required)",
        "rules.0.lane: lane 'b' is not upper-case",
        "framing.length: missing (required)",  # not framing.fixed.length
    ]
    assert problems({"name": "x", "framing": {"mode": "stx"}}, plain=True, unions=unions) \
        == ["framing.mode: unknown value 'stx' (one of 'crlf', 'fixed')"]
    assert problems({"name": "x", "framing": {}}, plain=True, unions=unions) \
        == ["framing.mode: missing (one of 'crlf', 'fixed')"]
    assert problems({"name": "x", "framing": 3}, plain=True, unions=unions)[0].startswith(
        "framing: ")


def test_an_empty_location_is_the_top_level():
    assert problems([1]) == ["(top level): Input should be a valid dictionary or instance of "
                             "Document"]


@pytest.mark.parametrize("error", [ConfigError, ProfileError, RulesError, ManifestError])
def test_every_reader_raises_the_one_source_and_problems_base(error):
    exc = error("agent.toml", ("a: bad", "b: worse"))
    assert isinstance(exc, ProblemsError) and isinstance(exc, EdgeAgentError)
    assert (exc.source, exc.problems) == ("agent.toml", ["a: bad", "b: worse"])
    assert str(exc) == "agent.toml: a: bad; b: worse"
