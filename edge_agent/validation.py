"""Turning bad files into clear problems: shared by config, profiles, rules and commands.

A problem is one line that names where it is (`devices.scale.port: ...`) and what is wrong,
so a technician can fix a file without reading code.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class StrictModel(BaseModel):
    """Base for models read from files people write: unknown keys are typos, so refuse them."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def problems_from(exc: ValidationError, prefix: str = "") -> list[str]:
    """One `location: message` line per pydantic error."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        if prefix:
            location = f"{prefix}.{location}" if location else prefix
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting (a typo?)"
        problems.append(f"{location or '(top level)'}: {message}")
    return problems


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
