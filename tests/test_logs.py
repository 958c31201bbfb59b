"""Logging: JSON lines off a terminal, raw frames only at -vv, and the current stderr."""

import io
import json
import sys

import structlog

from edge_agent.logs import configure_logging, raw_frames_enabled


def test_json_lines_to_whatever_stderr_is_now(monkeypatch):
    configure_logging(0, "json")
    for _ in range(2):  # a stream replaced after configuration still gets the events
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        structlog.get_logger("t").info("port.opened", device="scale")
        event = json.loads(stream.getvalue())
        assert (event["event"], event["device"], event["level"]) == ("port.opened", "scale", "info")


def test_verbosity_levels(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(0, "json")
    structlog.get_logger("t").debug("hidden")
    assert stream.getvalue() == "" and not raw_frames_enabled()
    configure_logging(1, "json")
    structlog.get_logger("t").debug("shown")
    assert json.loads(stream.getvalue())["event"] == "shown" and not raw_frames_enabled()
    configure_logging(2, "json")
    assert raw_frames_enabled()


def test_a_line_stays_readable_whatever_its_values_hold(monkeypatch):
    from edge_agent import logs

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging(0, "json")
    problems = [f"lanes.L{i}.bin: must be 1 or more" for i in range(5000)]
    structlog.get_logger("t").warning("command.refused", problems=problems,
                                      raw="x" * 2_000_000, details={"nested": {"a": ["b"] * 99}})
    line = stream.getvalue()
    assert len(line) < 20_000
    event = json.loads(line)
    assert len(event["problems"]) == logs.MAX_LIST_ITEMS + 1  # and a count of the rest
    assert event["problems"][-1] == "... 4950 more items"
    assert event["raw"].endswith("(1998000 more characters)")
    assert event["details"]["nested"]["a"][-1] == "... 49 more items"
