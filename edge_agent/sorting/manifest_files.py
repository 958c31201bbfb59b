"""Reading manifest files: CSV with a header row, or JSON Lines; each record with its line number.

Unreadable lines become problems ("line 7: ..."), collected rather than raised, so one import
reports every bad line at once.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path

from edge_agent.safe_text import SHOWN_CHARS, shown, terminal_safe
from edge_agent.sorting.manifest_entry import (
    FIELDS,
    MAX_BARCODE_CHARS,
    MAX_ORDER_ID_CHARS,
    MAX_POSTAL_CHARS,
    MAX_SERVICE_CHARS,
    ManifestError,
)

# A file with thousands of bad lines is the wrong file; listing the first ones is enough.
MAX_REPORTED_PROBLEMS = 50
# How far into a file that starts with blanks its first character is looked for.
MAX_PEEK_CHARS = 4096


def _clean_text_pattern(limit: int) -> str:
    """1 to `limit` printable ASCII characters with no space at either end."""
    return f"[!-~](?:[ -~]{{0,{limit - 2}}}[!-~])?"


# A whole clean CSV row, fields joined by \x1f, in one C-level match: what check_fields would
# accept unchanged (never more). Anything else goes through check_fields and its messages.
_CLEAN_ROW = re.compile(
    _clean_text_pattern(MAX_BARCODE_CHARS)
    + r"\x1f[A-Za-z]{2}\x1f"
    + f"(?:{_clean_text_pattern(MAX_POSTAL_CHARS)})?"
    + r"\x1f(?:(?!0*\.?0*\x1f)(?:[0-9]{1,3}(?:\.[0-9]{1,6})?|1000(?:\.0{1,6})?))?\x1f"  # 0<kg<=1000
    + f"(?:{_clean_text_pattern(MAX_SERVICE_CHARS)})?"
    + f"\x1f(?:{_clean_text_pattern(MAX_ORDER_ID_CHARS)})?"
    # Air and customs: one flag (several must be sorted by check_fields), a plain number below
    # 100,000,000, an upper-case code, a mode as spelt; anything else takes the careful path.
    + "\x1f(?:lithium_battery|liquid|powder|other|none)?"
    + r"\x1f(?:[0-9]{1,8}(?:\.[0-9]{1,6})?)?"
    + r"\x1f(?:[A-Z]{3})?"
    + r"\x1f(?:personal_postal|cross_border_ecommerce)?"
)


def clean_csv_row(record: tuple) -> bool:
    try:
        return _CLEAN_ROW.fullmatch("\x1f".join(record)) is not None
    except TypeError:  # a missing column (None) or a JSON value that is not text
        return False


def add_problem(problems: list[str], problem: str) -> None:
    if len(problems) < MAX_REPORTED_PROBLEMS:
        problems.append(problem)
    elif len(problems) == MAX_REPORTED_PROBLEMS:
        problems.append("... more bad lines not listed")


def read_records(path: Path, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    """(line number, field tuple) per record; unreadable lines become problems. The format is
    told by the first character: `{` JSON Lines, `[` a JSON array (refused: one object per
    line is what streams), anything else CSV with a header row."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ManifestError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    with handle:
        try:
            first = handle.read(MAX_PEEK_CHARS).lstrip("\ufeff \t\r\n")[:1]
            handle.seek(0)
            if first == "{":
                yield from _json_lines(handle, problems)
            elif first == "[":
                raise ManifestError(str(path), [
                    "line 1: a JSON array; a manifest is JSON Lines (one object per line, "
                    "no brackets) or CSV with a header row"])
            else:
                yield from _csv_rows(handle, problems)
        except UnicodeDecodeError as exc:
            raise ManifestError(str(path), [
                f"line {first_line_not_utf8(path)}: not UTF-8 text ({exc.reason})"
            ]) from None


def first_line_not_utf8(path: Path) -> int:
    """The number of the first line that is not UTF-8. A decode error's offset counts from
    the start of the chunk being decoded, not the file, so the line is found again here."""
    with path.open("rb") as raw:
        for number, line in enumerate(raw, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 1


def _csv_rows(handle, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    reader = csv.reader(handle)
    try:
        yield from _csv_records(reader, handle.name, problems)
    except csv.Error as exc:  # a field past csv's limit, a NUL byte: the rest is unreadable
        line = reader.line_num or 1
        problem = str(exc)
        if "field larger than field limit" in problem:
            problem = f"a field longer than {csv.field_size_limit():,} characters"
        raise ManifestError(handle.name, [f"line {line}: not readable as CSV ({problem})"]) \
            from None


def _csv_records(reader, source: str, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    header = next((row for row in reader if row), None)  # blank lines before it are skipped
    if header is None:
        return
    header = [name.strip().lstrip("\ufeff") for name in header]
    unknown = [name for name in header if name not in FIELDS]
    if unknown or "barcode" not in header or "country" not in header:
        raise ManifestError(
            source,
            [f"line {reader.line_num}: header must name barcode, country and optionally "
             f"{', '.join(FIELDS[2:])}; got {shown(','.join(header))}"],
        )
    positions = [header.index(name) if name in header else None for name in FIELDS]
    if None in positions:
        def pick(row: list[str]) -> tuple:
            # An absent column reads as an empty field: the clean-row fast path still applies
            # to files written before a column existed.
            return tuple("" if p is None else row[p] for p in positions)
    else:
        pick = itemgetter(*positions)  # type: ignore[arg-type]  # C-level: the common case
    width = len(header)
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            add_problem(problems, f"line {reader.line_num}: {len(row)} fields, header has {width}")
            continue
        yield reader.line_num, pick(row)


def _json_lines(handle, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            add_problem(problems, f"line {line_number}: not JSON ({exc.msg})")
            continue
        except RecursionError:  # [[[[... thousands deep: no manifest row looks like that
            add_problem(problems, f"line {line_number}: not a manifest row (JSON nested too "
                                  "deeply)")
            continue
        if not isinstance(record, dict):
            add_problem(problems, f"line {line_number}: expected a JSON object")
            continue
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            name = terminal_safe(unknown[0][:SHOWN_CHARS])
            add_problem(problems, f"line {line_number}: {name}: unknown field (a typo?)")
            continue
        yield line_number, tuple(record.get(name) for name in FIELDS)
