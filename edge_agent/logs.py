"""Structured logging with structlog.

JSON lines when stderr is not a terminal (journald, files), readable console output when it is.
Verbosity: default INFO, -v DEBUG, -vv DEBUG plus every raw frame in hex (`raw_frames_enabled`).
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_raw_frames = False


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


def _stderr_logger(*args: object) -> _StderrLogger:
    return _StderrLogger()


def configure_logging(
    verbosity: int = 0,
    fmt: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
) -> None:
    global _raw_frames
    _raw_frames = verbosity >= 2
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
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(base_level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
