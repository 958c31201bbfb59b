"""Each pairing fault on demand, through ptys, against the real agent process (issue 12).

At 10 parcels a second with 5 % of parcels hit by one fault (a streaming checkweigher in
window mode, or a polled MT-SICS scale; the scanner's faults with either), every event must
carry its own parcel's weight or none: each parcel's weight is unique, so a neighbour's is
seen at once. A parcel the fault hit goes to EXCEPTION saying why (its reason, and how the
weight was matched, `weight_pairing`), unless the agent absorbs the fault (a lost frame in a
run of stable ones, a label read twice); and at least (1 - 2 x fault rate) of the parcels
carry their own weight.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_line_harness import run_fault_line
from support.broker import MosquittoBroker

from edge_agent.simulation.fault_line import (
    ABSORBED,
    POLLED_FAULTS,
    SCANNER_FAULTS,
    STREAMING_FAULTS,
    plan_line,
)

PARCELS = 40
RATE = 10.0
FAULT_RATE = 0.05

# What the event of a parcel the fault hit says: (reasons, weight_pairing) it may give.
COST = {
    "unsettled": ({"no_stable_weight"}, {"unsettled"}),
    "extra_reading": ({"weight_ambiguous"}, {"ambiguous"}),
    # The bytes came together: the reading sits where no parcel's reading can be, or where
    # two could.
    "host_busy": ({"no_stable_weight", "weight_ambiguous"}, {"none", "ambiguous"}),
    "reply_lost": ({"no_stable_weight"}, {"no_reply"}),
    "reply_garbled": ({"no_stable_weight"}, {"reply_corrupt"}),
    "reply_late": ({"no_stable_weight"}, {"no_reply"}),
    "no_stable": ({"no_stable_weight"}, {"unsettled"}),
}

CASES = [("streaming", fault) for fault in STREAMING_FAULTS + SCANNER_FAULTS] + [
    ("polled", fault) for fault in POLLED_FAULTS + SCANNER_FAULTS]


@pytest.mark.parametrize(("scale", "fault"), CASES, ids=[f"{s}-{f}" for s, f in CASES])
def test_a_fault_costs_its_own_parcel_and_never_gives_a_neighbours_weight(
    tmp_path: Path, mosquitto: MosquittoBroker, scale: str, fault: str
) -> None:
    plan = plan_line(PARCELS, RATE, scale, faults=(fault,), fault_rate=FAULT_RATE, seed=12)
    faulted = [p for p in plan.parcels if p.fault is not None]
    assert len(faulted) == round(FAULT_RATE * PARCELS)

    result, events = run_fault_line(plan, tmp_path / "line", mosquitto)

    assert result["wrong"] == 0, result["wrong_parcels"]  # never another parcel's weight
    assert result["unmatched"] == result["duplicates"] == 0  # one event per parcel seen
    assert result["events"] == plan.expected_lane_commands() == len(events)
    outcome = result["by_fault"][fault]
    if fault == "missed_scan":  # the agent never heard of it: no event, nobody took its weight
        assert outcome["unseen"] == len(faulted)
    elif fault in ABSORBED:  # still its own weight (a no-read goes to EXCEPTION for its label)
        # ... unless the host read it late: then safe, like any parcel the host's delays cost
        # (the share of right parcels below bounds how many).
        assert outcome["right"] + outcome["safe"] == len(faulted), outcome
        assert outcome["right"] >= 1, outcome
        if fault == "no_read":
            assert all("no_read" in reasons for reasons in outcome["reasons"])
    else:
        reasons, pairings = COST[fault]
        assert outcome["safe"] == len(faulted), outcome  # EXCEPTION, without a weight
        assert all(set(r) & reasons for r in outcome["reasons"]), outcome["reasons"]
        assert set(outcome["pairings"]) <= pairings, outcome["pairings"]
    assert result["right"] >= (1 - 2 * FAULT_RATE) * PARCELS, result
