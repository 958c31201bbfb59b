"""Turning bad files into clear problems: shared by config, profiles, rules and commands.

A problem is one line that names where it is (`devices.scale.port: ...`) and what is wrong,
so a technician can fix a file without reading code.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Base for models read from files people write: unknown keys are typos, so refuse them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class UnionTag:
    """A tagged union under a top-level field (a profile's `framing` by its `mode`): pydantic
    puts the chosen tag in the path (framing.stx_etx.end), which no file has, so it is left out,
    and a bad or missing tag is named as the field that holds it, with the values it may take."""

    field: str
    choices: Sequence[str]


# Plain words for pydantic's messages where a file's author would not recognise its own.
PLAIN_MESSAGES = {"missing": "missing (required)", "model_attributes_type": "must be a table"}


def problems_from(exc: ValidationError, prefix: str = "", *, list_positions: bool = False,
                  plain: bool = False, unions: Mapping[str, UnionTag] | None = None) -> list[str]:
    """One `location: message` line per pydantic error, for every file and command read.

    `prefix` goes before every location (a command's `args`); `list_positions` writes list
    indexes in brackets (`rules[3].when`) instead of as dotted parts; `plain` rewords pydantic's
    own phrases (PLAIN_MESSAGES, the "Value error, " before a validator's message); `unions`
    names the tagged unions by their top-level field.
    """
    unions = unions or {}
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        union = unions.get(str(loc[0])) if loc else None
        if union is not None and len(loc) > 1:
            del loc[1]
        message, kind = error["msg"], error["type"]
        if kind == "extra_forbidden":
            message = "unknown setting (a typo?)"
        elif kind in ("union_tag_invalid", "union_tag_not_found") and union is not None:
            loc.append(union.field)
            context = error.get("ctx") or {}
            expected = context.get("expected_tags")
            if expected is None:
                expected = ", ".join(repr(choice) for choice in union.choices)
            got = context.get("tag")
            message = (f"unknown value {got!r}" if got else "missing") + f" (one of {expected})"
        elif plain and kind == "value_error":
            message = message.removeprefix("Value error, ")
        elif plain:
            message = PLAIN_MESSAGES.get(kind, message)
        location = _location(loc, list_positions)
        if prefix:
            location = f"{prefix}.{location}" if location else prefix
        problems.append(f"{location or '(top level)'}: {message}")
    return problems


def _location(loc: list[Any], list_positions: bool) -> str:
    if not list_positions:
        return ".".join(str(part) for part in loc)
    location = ""
    for part in loc:
        location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
    return location


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; raises ValueError with a message that names the line and column."""
    try:
        data = path.read_bytes()
        return tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        raise ValueError("file not found") from None
    except IsADirectoryError:
        raise ValueError("is a directory, not a file") from None
    except PermissionError:
        raise ValueError("permission denied") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(f"line {line}: not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML: {exc}") from None
