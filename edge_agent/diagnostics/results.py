"""One check's verdict: pass, warn or fail, what was found, and one line of advice.

Every check returns CheckResult objects and never raises for what it inspects: a missing port
or an unreachable broker is a result, not an exception, so `doctor` always reports everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


# Order of badness, for the exit code and the summary line.
SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}


@dataclass(frozen=True)
class CheckResult:
    name: str  # what was checked, e.g. "port scale: present"
    status: Status
    detail: str  # what was found
    advice: str = ""  # what to do about it (empty when nothing needs doing)

    def to_dict(self) -> dict[str, str]:
        return {**asdict(self), "status": self.status.value}


def passed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.PASS, detail)


def warned(name: str, detail: str, advice: str) -> CheckResult:
    return CheckResult(name, Status.WARN, detail, advice)


def failed(name: str, detail: str, advice: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, detail, advice)


def worst(results: Iterable[CheckResult]) -> Status:
    return max((r.status for r in results), key=SEVERITY.__getitem__, default=Status.PASS)
