"""The fault line's plan and timeline, without ptys: faults where the plan says, frames as the
real device sends them (decoded by the agent's own codecs), and each fault, fed to the real
Pairer at the planned times, costs what it should. The end-to-end tests
(test_pairing_faults_end_to_end.py) then run the same plans through the agent process."""

from __future__ import annotations

import itertools

import pytest

from edge_agent.config import PairingConfig
from edge_agent.devices.codec import make_codec
from edge_agent.devices.messages import DecodeError, Scan, Weight
from edge_agent.devices.profiles import load_profile
from edge_agent.simulation.fault_line import (
    POLLED_FAULTS,
    STREAMING_FAULTS,
    Geometry,
    LinePlan,
    PolledPlatter,
    plan_line,
    scale_profile,
    timeline,
)
from edge_agent.sorting.pairing import Pairer
from edge_agent.units import NS_PER_MS


@pytest.mark.parametrize("scale", ["streaming", "polled"])
def test_faults_are_exactly_the_rate_spaced_apart_and_taken_in_turn(scale: str) -> None:
    plan = plan_line(200, 10, scale, fault_rate=0.05, seed=4)
    faulted = [p for p in plan.parcels if p.fault is not None]
    assert len(faulted) == 10
    assert all(b.index - a.index >= 3 for a, b in itertools.pairwise(faulted))
    assert faulted[0].index > 0 and faulted[-1].index < 199
    kinds = {p.fault for p in faulted}
    assert len(kinds) == 7  # every fault of the scale and of the scanner, in turn
    assert len({p.weight_kg for p in plan.parcels}) == 200  # each weight unique
    assert LinePlan.from_json(plan.to_json()) == plan


def test_too_many_faults_for_the_spacing_are_refused() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        plan_line(20, 10, "polled", fault_rate=0.5)


@pytest.mark.parametrize("rate", [5, 10, 20, 50])
def test_neighbours_windows_never_overlap_and_jitter_stays_inside_the_window(rate: float) -> None:
    geometry = Geometry.for_rate(rate)
    assert 2 * geometry.window_ms < geometry.gap_ms - 2 * geometry.scan_jitter_ms
    assert geometry.reading_jitter_ms + geometry.scan_jitter_ms < geometry.window_ms
    # The agent accepts the settings (a parcel's wait fits its decision deadline).
    PairingConfig(mode="window", offset_ms=round(geometry.offset_ms),
                  window_ms=geometry.window_ms)
    PairingConfig(mode="poll-after-scan", poll_timeout_ms=geometry.poll_timeout_ms,
                  resync_ms=geometry.resync_ms)


def _decode(plan: LinePlan, port: str, profile: str) -> list:
    """The timeline's bytes for `port`, each write decoded at its time by the agent's codec."""
    codec = make_codec(load_profile(profile))
    messages = []
    for at_ms, where, data in timeline(plan):
        if where == port:
            messages += codec.feed(data, int(at_ms * NS_PER_MS))
    return messages


def test_streaming_frames_are_what_an_mt_sics_balance_sends() -> None:
    plan = plan_line(40, 10, "streaming", faults=STREAMING_FAULTS, fault_rate=0.1, seed=2)
    messages = _decode(plan, "scale", scale_profile("streaming"))
    weights = [m for m in messages if isinstance(m, Weight)]
    garbled = [m for m in messages if isinstance(m, DecodeError)]
    assert weights and all(w.unit == "kg" for w in weights)
    # A garbled frame is what the codec refuses; every other frame decodes.
    assert len(garbled) == sum(p.fault == "frame_lost" and p.index % 2 for p in plan.parcels)
    healthy = next(p for p in plan.parcels if p.fault is None)
    stable = [w for w in weights if w.stable and w.value_kg == healthy.weight_kg]
    assert len(stable) == 4
    assert abs(stable[0].received_ns / NS_PER_MS - healthy.settle_ms) <= plan.geometry.frame_ms
    scans = _decode(plan, "scanner", "generic-scanner")
    assert {s.data for s in scans if isinstance(s, Scan) and not s.no_read} == {
        p.barcode for p in plan.parcels if p.fault not in ("no_read", "missed_scan")}


EXPECTED_PAIRING = {
    None: {"paired"}, "frame_lost": {"paired"}, "double_read": {"paired"},
    "no_read": {"paired"}, "unsettled": {"unsettled"}, "extra_reading": {"ambiguous"},
    "host_busy": {"none", "ambiguous"},
}


@pytest.mark.parametrize("fault", [*STREAMING_FAULTS, "no_read", "double_read", "missed_scan"])
def test_each_streaming_fault_costs_its_own_parcel_only(fault: str) -> None:
    plan = plan_line(60, 10, "streaming", faults=(fault,), fault_rate=0.05, seed=9)
    geometry = plan.geometry
    pairer = Pairer(PairingConfig(mode="window", offset_ms=round(geometry.offset_ms),
                                  window_ms=geometry.window_ms),
                    new_parcel_id=iter(range(10**6)).__next__)
    messages = sorted(_decode(plan, "scanner", "generic-scanner")
                      + _decode(plan, "scale", scale_profile("streaming")),
                      key=lambda m: m.received_ns)
    handed = []
    for message in messages:
        handed += pairer.ready(message.received_ns)
        if isinstance(message, Scan):
            pairer.on_scan(message)
        elif isinstance(message, Weight):
            pairer.on_weight(message)
    handed += pairer.ready(10**15)
    seen = [p for p in plan.parcels if p.seen()]
    assert len(handed) == len(seen)
    for parcel, result in zip(seen, handed, strict=True):
        assert result.weight_pairing in EXPECTED_PAIRING.get(parcel.fault, {"paired"}), parcel
        assert result.weight_kg in (None, parcel.weight_kg)


def test_the_polled_platter_answers_what_it_holds_and_faults_its_own_parcel_once() -> None:
    plan = plan_line(40, 10, "polled", faults=POLLED_FAULTS, fault_rate=0.1, seed=5)
    platter = PolledPlatter(plan)
    for parcel in plan.parcels:
        asked = parcel.scan_ms + 1
        assert platter.answer_at(asked) == parcel.settle_ms  # `S` waits for it to settle
        frame, later = platter.answer(parcel.settle_ms)
        again, _ = platter.answer(parcel.settle_ms)
        assert again == f"S S {parcel.weight_kg:>10.3f} kg\r\n".encode()
        expected = {None: again, "reply_lost": None, "reply_garbled": b"S S ###.#\x7f kg\r\n",
                    "no_stable": b"S I\r\n", "reply_late": again}.get(parcel.fault, again)
        assert frame == expected, parcel
        assert (later > plan.geometry.poll_timeout_ms) == (parcel.fault == "reply_late")
