"""Simulated serial devices on real pseudo-terminals, and waiting on conditions with deadlines.

`pty_bench` starts simulators whose stable paths live in a temporary by-id directory and stops
them all at teardown. `collect_until` drives a DeviceHub (its poll() is the wait) until the
collected messages satisfy a predicate; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.messages import Message
from edge_agent.devices.simulators import (
    DwsSimulator,
    PtyPeer,
    ScaleSimulator,
    ScannerSimulator,
    SorterSimulator,
)

# Generous for a shared 2-core CI machine; a passing test never waits this long.
DEFAULT_TIMEOUT_S = 5.0
HUB_POLL_STEP_S = 0.02
CONDITION_STEP_S = 0.005


class PtyBench:
    """Starts simulators with links in `by_id` (like /dev/serial/by-id) and stops them all."""

    def __init__(self, by_id: Path) -> None:
        self.by_id = by_id
        self.started: list[PtyPeer] = []

    def link(self, name: str) -> Path:
        return self.by_id / f"usb-Sim_{name}-if00-port0"

    def scale(
        self, profile: str = "mt-sics", name: str = "scale", **options: Any
    ) -> ScaleSimulator:
        return self._start(ScaleSimulator(profile, self.link(name), name=name, **options))

    def scanner(
        self, profile: str = "generic-scanner", name: str = "scanner", **options: Any
    ) -> ScannerSimulator:
        return self._start(ScannerSimulator(profile, self.link(name), name=name, **options))

    def dws(self, profile: str = "generic-dws", name: str = "dws") -> DwsSimulator:
        return self._start(DwsSimulator(profile, self.link(name), name=name))

    def sorter(self, name: str = "sorter", **options: Any) -> SorterSimulator:
        return self._start(SorterSimulator(self.link(name), name=name, **options))

    def _start(self, simulator: Any) -> Any:
        simulator.start()
        self.started.append(simulator)
        return simulator

    def stop_all(self) -> None:
        for simulator in self.started:
            simulator.stop()


@pytest.fixture
def pty_bench(tmp_path: Path) -> Iterator[PtyBench]:
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    bench = PtyBench(by_id)
    try:
        yield bench
    finally:
        bench.stop_all()


def collect_until(
    hub: DeviceHub,
    predicate: Callable[[list[tuple[str, Message]]], bool],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    into: list[tuple[str, Message]] | None = None,
) -> list[tuple[str, Message]]:
    """Poll the hub until `predicate(messages so far)` holds; fail with what arrived if not."""
    collected = [] if into is None else into
    deadline = time.monotonic() + timeout_s
    while not predicate(collected):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s} s; got {collected!r}")
        collected.extend(hub.poll(HUB_POLL_STEP_S))
    return collected


def wait_until(predicate: Callable[[], bool], timeout_s: float = DEFAULT_TIMEOUT_S,
               hub: DeviceHub | None = None) -> None:
    """Wait for a condition outside the hub (a simulator's state), driving the hub if given."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout_s} s")
        if hub is not None:
            hub.poll(HUB_POLL_STEP_S)
        else:
            pause.wait(CONDITION_STEP_S)


def of_kind(messages: list[tuple[str, Message]], kind: str) -> list[Message]:
    return [message for _, message in messages if message.kind == kind]
