"""Structured logging with structlog.

JSON lines when stderr is not a terminal (journald, files), readable console output when it is.
Verbosity: default INFO, -v DEBUG, -vv DEBUG plus every raw frame in hex (`raw_frames_enabled`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog

_raw_frames = False
# A log line is for a person or a log shipper: values past these sizes are cut, with a count of
# what was left out. Whatever arrives from outside (a refused command's problems, a device's
# bytes) cannot make a line of megabytes (one once reached 2 MB). A traceback gets more room.
MAX_VALUE_CHARS = 2000
MAX_TRACEBACK_CHARS = 16_000
MAX_LIST_ITEMS = 50
# Nesting followed when bounding values; deeper containers are shown by their type only.
MAX_VALUE_DEPTH = 4


def raw_frames_enabled() -> bool:
    """True when -vv asked for every raw frame in hex (checked by readers before formatting)."""
    return _raw_frames


class _StderrLogger:
    """Writes each rendered event to whatever sys.stderr is at that moment.

    structlog's PrintLogger keeps the stream it was given; a stream replaced later (by a test
    harness capturing output, or closed by it) would then receive, or fail, every later event.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _bounded(value: Any, depth: int = 0, limit: int = MAX_VALUE_CHARS) -> Any:
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        return f"{value[:limit]}... ({len(value) - limit} more characters)"
    if isinstance(value, bytes | bytearray):
        return _bounded(value.hex(), depth, limit)
    if isinstance(value, dict | list | tuple) and depth >= MAX_VALUE_DEPTH:
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, dict):
        items = list(value.items())
        bounded = {str(k)[:100]: _bounded(v, depth + 1) for k, v in items[:MAX_LIST_ITEMS]}
        if len(items) > MAX_LIST_ITEMS:
            bounded["..."] = f"{len(items) - MAX_LIST_ITEMS} more entries"
        return bounded
    if isinstance(value, list | tuple):
        bounded_list = [_bounded(item, depth + 1) for item in value[:MAX_LIST_ITEMS]]
        if len(value) > MAX_LIST_ITEMS:
            bounded_list.append(f"... {len(value) - MAX_LIST_ITEMS} more items")
        return bounded_list
    return value


def bound_values(logger: object, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every value within a readable size (see MAX_VALUE_CHARS)."""
    return {key: _bounded(value, limit=MAX_TRACEBACK_CHARS if key == "exception"
                          else MAX_VALUE_CHARS) for key, value in event.items()}


def _stderr_logger(*args: object) -> _StderrLogger:
    return _StderrLogger()


# The last configure_logging's arguments: a worker process logs the way its agent does.
_settings: tuple[int, str, str] = (0, "auto", "info")


def logging_settings() -> tuple[int, str, str]:
    return _settings


def configure_logging(
    verbosity: int = 0,
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
) -> None:
    global _raw_frames, _settings
    _raw_frames = verbosity >= 2
    _settings = (verbosity, fmt, level)
    base_level = logging.DEBUG if verbosity >= 1 else getattr(logging, level.upper(), logging.INFO)
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if use_console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            bound_values,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(base_level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
