"""Sorter-driven mode end to end: the real agent process, a sorter-host sorter that re-sends
every request, recirculates, reports chutes full and loses tracking at random and gives some
requests a deadline the agent cannot meet, a real mosquitto, SIGKILLs of the agent while parcels
are on the sorter, and the sorter's link lost twice (switched off for a moment; a connection
dropped with requests and results on it). The sorter sits on a pty, or on loopback TCP
connecting to the agent as its server (as the public sorter host specs have it).

Central must see at most one decision per tracking number (re-sent requests and later passes,
across restarts too, never decide again) and exactly one outcome per decided parcel: the
sorter's final result when the agent heard it, else no_confirmation.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from fault_support import Central, scaled
from line_harness import AgentProcess, wait_for
from support.broker import MosquittoBroker, mosquitto  # noqa: F401
from support.device_links import Link, device_lines, place

from edge_agent.config import load_config
from edge_agent.devices.simulators.host_sorter import HostSorterSimulator
from edge_agent.runtime.destinations import LATE_REASON
from edge_agent.runtime.status_server import StatusError, query_status
from edge_agent.simulation.line_sim import sorter_driven_config_text, write_manifest
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.payloads import OutcomeEvent

PARCELS = scaled(300, 3000)
KILLS = scaled(3, 20)
RATE = 60.0
CONFIRM_TIMEOUT_MS = 2000
RATES = {"too_late": 0.05, "chute_full": 0.08, "chute_jammed": 0.02, "recirculated": 0.15,
         "tracking_lost": 0.05}
# The sorter's own status word for each outcome the agent publishes.
SAID = {"sorted": "sorted", "too_late": "too_late", "chute_full": "bin_full",
        "chute_jammed": "bin_jammed", "tracking_lost": "tracking_lost",
        "recirculated": "recirculated"}
EVENTS_TIMEOUT_S = 60.0
# Every LATE_EVERY-th parcel starts a burst of LATE_BURST requests in one write, each naming a
# 1 ms deadline: the agent answers them one after the other, the last ones late.
LATE_EVERY, LATE_BURST = 40, 8


def sorter_connected(state_dir: Path) -> bool:
    try:
        status = query_status(state_dir / "status.sock", timeout_s=1.0)
    except StatusError:
        return False
    return (status.get("devices") or {}).get("sorter", {}).get("state") == "connected"


@pytest.fixture
def line(tmp_path: Path, mosquitto: MosquittoBroker, link: Link):  # noqa: F811
    parcels = parcel_mix(PARCELS, seed=41)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    write_manifest(tmp_path, state_dir, parcels)
    sorter = place(HostSorterSimulator(tmp_path / "sorter"), link).start()
    sorter.outcome = "sorted"
    sorter.use_outcome_rates(RATES, seed=3)
    sorter.resend_requests = True  # every request twice, unchanged
    sorter.result_delay_s = 0.15  # parcels ride to their chute: results overlap the kills
    config = tmp_path / "agent.toml"
    config.write_text(sorter_driven_config_text(
        device_lines(sorter, link), broker=f"{mosquitto.host}:{mosquitto.port}",
        telemetry_period_s=1.0,
        settings=f"\n[sorter]\nconfirm_timeout_ms = {CONFIRM_TIMEOUT_MS}\nmax_passes = 3\n"))
    central = Central(mosquitto.host, mosquitto.port, load_config(config).topic_prefix)
    yield tmp_path, config, sorter, parcels, central
    central.close()
    sorter.stop()


@pytest.mark.parametrize("link", ["pty", "tcp-server"])
def test_sorter_driven_parcels_are_decided_once_and_end_once_across_sigkills(line, link: Link):
    root, config, sorter, parcels, central = line
    kill_points = sorted(random.Random(9).sample(range(40, PARCELS - 40), KILLS))
    inducted = 0

    def drive() -> None:
        nonlocal inducted
        start = time.monotonic()
        for number, parcel in enumerate(parcels):
            while (wait := start + number / RATE - time.monotonic()) > 0:
                time.sleep(wait)  # pacing the line, not synchronisation
            dims = None if parcel.weight_kg is None else (300.0, 200.0, 100.0)
            if number % LATE_EVERY == 0:
                sorter.hold_requests()
                sorter.deadline_ms = 1
            sorter.induct(f"T{number:06d}", [parcel.barcode] if parcel.barcode else [],
                          weight_kg=parcel.weight_kg, dims=dims)
            if number % LATE_EVERY == LATE_BURST - 1:
                sorter.deadline_ms = None
                sorter.release_requests()
            inducted = number + 1

    agent = AgentProcess(config, root / "agent.log").start()
    try:
        wait_for(lambda: sorter_connected(root / "state"), what="agent ready")
        driver = threading.Thread(target=drive, daemon=True)
        driver.start()
        for number, point in enumerate(kill_points):
            wait_for(lambda p=point: inducted >= p, what=f"parcel {point} inducted")
            agent.kill()
            agent.start()
            wait_for(lambda: sorter_connected(root / "state"), what="agent back")
            if number == 0:  # and once the sorter's link drops for a moment
                sorter.unplug()
                wait_for(lambda: not sorter_connected(root / "state"), what="link down")
                sorter.replug()
                wait_for(lambda: sorter_connected(root / "state"), what="link back")
            if number == 1:  # and a link lost with requests and results on it
                sorter.drop_link()
                wait_for(lambda: sorter_connected(root / "state"), what="link back")
        driver.join()

        def settled() -> bool:
            arrivals = central.snapshot()
            decided = {a.event["parcel_id"] for a in arrivals if a.kind == "parcel"}
            ended = {a.event["parcel_id"] for a in arrivals if a.kind == "outcome"}
            return bool(decided) and decided <= ended

        wait_for(settled, timeout_s=EVENTS_TIMEOUT_S, what="an outcome for every decision")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()

    arrivals = central.snapshot()
    decisions = {a.event["parcel_id"]: a.event for a in arrivals if a.kind == "parcel"}
    # Requests sent while the agent restarts get no answer (the sorter uses its own fallback).
    assert len(decisions) >= PARCELS // 3, "the line was served between kills"
    per_tracking: dict[str, set[str]] = defaultdict(set)
    for event in decisions.values():
        per_tracking[event["sorter_tracking"]].add(event["parcel_id"])
    assert {t: ids for t, ids in per_tracking.items() if len(ids) > 1} == {}
    outcome_ids: dict[str, set[str]] = defaultdict(set)
    outcomes = {}
    for arrival in arrivals:
        if arrival.kind == "outcome":
            outcome_ids[arrival.event["parcel_id"]].add(arrival.event["event_id"])
            outcomes[arrival.event["parcel_id"]] = OutcomeEvent.model_validate(arrival.event)
    assert {pid: ids for pid, ids in outcome_ids.items() if len(ids) > 1} == {}
    wrong = []
    for parcel_id, decision in decisions.items():
        results = sorter.parcels[decision["sorter_tracking"]].results
        final = [r for r in results if r["final"]]
        allowed = {"no_confirmation"} | {SAID[r["status"]] for r in final}
        if outcomes[parcel_id].outcome not in allowed:
            wrong.append((parcel_id, [r["status"] for r in results], outcomes[parcel_id]))
    assert wrong == []
    heard = sum(1 for o in outcomes.values() if o.source == "sorter")
    assert heard >= len(decisions) * 0.7, (heard, len(decisions))
    # Answered after the deadline: to the exception lane, said so, only where the deadline was
    # one the agent could not meet (a decision is made on a parcel's first request only).
    late = {event["sorter_tracking"]: event for event in decisions.values()
            if LATE_REASON in event["reasons"]}
    assert late, "no request was answered late"
    assert {t for t, event in late.items() if event["lane"] != "EXCEPTION"
            or int(t.removeprefix("T")) % LATE_EVERY >= LATE_BURST} == set()
    resent = sum(1 for p in sorter.parcels.values() for r in p.replies) - len(sorter.parcels)
    assert resent > 0  # the agent answered re-sent requests (and decided none twice, above)
