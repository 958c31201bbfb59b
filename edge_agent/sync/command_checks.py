"""The checks every command passes before anything acts on it: shape, freshness, reply size.

All of it runs on the command worker's thread, never on the decision loop. Each check returns
a problem (a short sentence naming what was wrong) or None, so the caller turns it into the
command's error reply; none of them raises on any input.

Why these limits: a command is small by nature (a rule set, a lane state, a batch of manifest
rows). What makes one expensive is its shape, not its meaning: ten thousand nested brackets
crash a recursive parser, a million tiny values cost seconds to validate. So the payload's
bytes, nesting depth and number of values are bounded before any model looks at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Nesting deeper than this is refused. The deepest honest command is an envelope holding a
# list of manifest rows: {"args": {"entries": [{...}]}}, depth 4.
MAX_DEPTH = 16
# JSON values (objects, arrays, strings, numbers...) in one command: a full manifest batch
# holds ~6 per row, so 5,000 rows are ~30,000 values.
MAX_VALUES = 50_000
# A reply lists at most this many problems (plus their total): enough to fix a file by, small
# enough that a thousand refused commands cost kilobytes, not megabytes.
MAX_REPLY_PROBLEMS = 20
# Each problem, message and echoed value is cut to this many characters.
MAX_PROBLEM_CHARS = 240
# Clock skew accepted between central and this agent, both ways. NTP keeps skew to well under
# a second; a line computer that booted without a network can be off by more, and a refused
# command is re-sent by central with a fresh time, so the tolerance stays small.
CLOCK_SKEW_S = 30.0
# A command without an expiry lives this long after its issue time.
DEFAULT_LIFETIME_S = 60.0
# No command may ask to live longer than this: the ids of commands seen are kept at least this
# long (plus the skew) so a late duplicate is recognised, and that store must stay small.
MAX_LIFETIME_S = 3600.0


def cut(text: str, limit: int = MAX_PROBLEM_CHARS) -> str:
    """`text` within `limit` characters, with the number of characters left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def capped_problems(problems: list[str]) -> tuple[list[str], int]:
    """The first MAX_REPLY_PROBLEMS problems (each cut), and how many there were in all."""
    return [cut(str(problem)) for problem in problems[:MAX_REPLY_PROBLEMS]], len(problems)


def parse_json(payload: bytes) -> tuple[Any, str | None]:
    """(value, None), or (None, problem) for bytes that are not JSON or too deeply nested.

    The C decoder recurses once per bracket; it raises RecursionError (not a ValueError) when
    nesting passes Python's recursion limit, and that error must not end the thread."""
    try:
        return json.loads(payload), None
    except RecursionError:
        return None, "payload is nested too deeply to parse"
    except (UnicodeDecodeError, ValueError) as exc:
        return None, cut(f"payload is not JSON: {exc}")


def shape_problem(value: Any) -> str | None:
    """A problem if the parsed value nests deeper than MAX_DEPTH or holds over MAX_VALUES
    values. Walks with its own stack: a recursive walk is what a deep value would break."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return f"payload holds more than {MAX_VALUES} JSON values"
        if depth > MAX_DEPTH:
            return f"payload nests deeper than {MAX_DEPTH} levels"
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return None


@dataclass(frozen=True)
class Freshness:
    """How the agent judges a command's age (see docs/MQTT.md, "Fresh and once-only")."""

    skew_s: float = CLOCK_SKEW_S
    # A command without `issued_at` is refused unless this is set: for central systems being
    # migrated to the dated envelope, never the normal state of a line.
    accept_undated: bool = False


def freshness_problem(
    issued_at: datetime | None, expires_at: datetime | None, now: datetime, rules: Freshness
) -> str | None:
    """A problem if the command is undated (and undated ones are refused), issued in the
    future, expired, or asks for a lifetime over MAX_LIFETIME_S; None if it may run now."""
    skew = timedelta(seconds=rules.skew_s)
    if issued_at is None:
        if rules.accept_undated:
            return None
        return "issued_at is required (ISO-8601 with offset): undated commands are refused"
    issued_at = _aware(issued_at)
    expires = _aware(expires_at) if expires_at is not None else (
        issued_at + timedelta(seconds=DEFAULT_LIFETIME_S))
    if expires <= issued_at:
        return "expires_at must be after issued_at"
    if expires - issued_at > timedelta(seconds=MAX_LIFETIME_S):
        return f"a command may live at most {MAX_LIFETIME_S:.0f} s (expires_at - issued_at)"
    if issued_at > now + skew:
        return (f"issued_at {issued_at.isoformat()} is in the future by more than the "
                f"{rules.skew_s:g} s clock tolerance (agent time {now.isoformat()})")
    if now > expires + skew:
        return (f"expired at {expires.isoformat()} (agent time {now.isoformat()}, "
                f"tolerance {rules.skew_s:g} s)")
    return None


def _aware(moment: datetime) -> datetime:
    # The models require an offset; a naive time here would be a bug, read as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
