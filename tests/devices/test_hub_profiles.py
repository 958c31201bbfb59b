"""Every shipped device profile against its independently written simulator, through the hub.

The simulators build frames from docs/PROTOCOLS.md on their own, so a decoder that misreads a
field (decimal position, sign, motion bit, no-read text) fails here even if its unit tests
were written from the same misunderstanding.
"""

from __future__ import annotations

import pytest
from support.pty_devices import PtyBench, collect_until, of_kind, wait_until

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.messages import WeightStatus
from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.profiles import load_profile

FAST_POLL_MS = 30
SCALE_PROFILES = ["mt-sics", "mt-sics-continuous", "toledo-continuous", "nci-scp01",
                  "sma-scp0499", "and-standard"]
SCANNER_PROFILES = ["generic-scanner", "zebra-ds", "honeywell-serial-trigger", "keyence-fixed"]


def next_weight(hub: DeviceHub, predicate=lambda weight: True):
    """The first weight, from now on, that satisfies `predicate` (older readings may lag)."""
    got = collect_until(hub, lambda got: any(predicate(w) for w in of_kind(got, "weight")))
    return next(w for w in of_kind(got, "weight") if predicate(w))


@pytest.mark.parametrize("profile", SCALE_PROFILES)
def test_scale_profiles_read_their_simulator(pty_bench: PtyBench, profile: str) -> None:
    scale = pty_bench.scale(profile, weight_kg=12.34)
    with DeviceHub() as hub:
        hub.add(SupervisedPort("scale", scale.path, load_profile(profile),
                               poll_period_ms=FAST_POLL_MS))
        stable = next_weight(hub)
        assert (stable.value_kg, stable.stable, stable.status) == (12.34, True, WeightStatus.OK)
        scale.set_weight(7.65, stable=False)
        moving = next_weight(hub, lambda w: not w.stable)
        assert moving.value_kg == pytest.approx(7.65)
        scale.set_overload()
        over = next_weight(hub, lambda w: w.status is not WeightStatus.OK)
        assert over.status is WeightStatus.OVERLOAD


@pytest.mark.parametrize("profile", SCANNER_PROFILES)
def test_scanner_profiles_read_their_simulator(pty_bench: PtyBench, profile: str) -> None:
    scanner = pty_bench.scanner(profile)
    with DeviceHub() as hub:
        port = hub.add(SupervisedPort("scanner", scanner.path, load_profile(profile)))
        # Triggered scanners are switched on by the profile's start-up commands.
        wait_until(lambda: scanner.triggered, hub=hub)
        scanner.scan("RB123456785GB")
        got = collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 1)
        if profile == "keyence-fixed":
            # Close the window that held the read, then open and close one with nothing in it.
            for command in ("trigger_off", "trigger_on", "trigger_off"):
                hub.send("scanner", port.codec.command(command))
        else:
            scanner.no_read()
        collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 2, into=got)
    read, no_read = of_kind(got, "scan")
    assert (read.data, read.no_read) == ("RB123456785GB", False)
    assert no_read.no_read is True
    assert not of_kind(got, "error")


def test_aim_prefix_is_reported_as_the_symbology(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("generic-scanner", aim_prefix="]C1")
    with DeviceHub() as hub:
        hub.add(SupervisedPort("scanner", scanner.path, load_profile("generic-scanner")))
        scanner.scan("00376130321109103420")
        (scan,) = of_kind(collect_until(hub, lambda got: len(got) >= 1), "scan")
    assert (scan.symbology, scan.data) == ("]C1", "00376130321109103420")
