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

from edge_agent.sorting.manifest_entry import (
    FIELDS,
    MAX_BARCODE_CHARS,
    MAX_POSTAL_CHARS,
    MAX_SERVICE_CHARS,
    ManifestError,
)

# A file with thousands of bad lines is the wrong file; listing the first ones is enough.
MAX_REPORTED_PROBLEMS = 50


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
    """(line number, field tuple) per record; unreadable lines become problems."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ManifestError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    with handle:
        try:
            first = handle.readline()
            handle.seek(0)
            if first.lstrip().startswith("{"):
                yield from _json_lines(handle, problems)
            else:
                yield from _csv_rows(handle, problems)
        except UnicodeDecodeError as exc:
            raise ManifestError(str(path), [f"not UTF-8 text ({exc.reason})"]) from None


def _csv_rows(handle, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    header = [name.strip().lstrip("\ufeff") for name in header]
    unknown = [name for name in header if name not in FIELDS]
    if unknown or "barcode" not in header or "country" not in header:
        raise ManifestError(
            handle.name,
            [f"line 1: header must name barcode, country and optionally "
             f"{', '.join(FIELDS[2:])}; got {header}"],
        )
    positions = [header.index(name) if name in header else None for name in FIELDS]
    if None in positions:
        def pick(row: list[str]) -> tuple:
            return tuple(None if p is None else row[p] for p in positions)
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
        if not isinstance(record, dict):
            add_problem(problems, f"line {line_number}: expected a JSON object")
            continue
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            add_problem(problems, f"line {line_number}: {unknown[0]}: unknown field (a typo?)")
            continue
        yield line_number, tuple(record.get(name) for name in FIELDS)
