"""Fault 3: broker outages (with and without its own persistence), repeated restarts, and a
half-open network. The agent reaches mosquitto through a TCP proxy in the test, so the test
decides when the agent can connect again (only once central has re-subscribed: otherwise
central, not the agent, would miss events).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from fault_support import CENTRAL_BROKER_CONFIG, Central, scaled, unannounced_seq_gaps, wrong_bins
from line_harness import AgentProcess, sorter_records, wait_for
from support.broker import MosquittoBroker
from tcp_proxy import TcpProxy

from edge_agent.config import load_config
from edge_agent.runtime.status_server import StatusError, query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

RATE = scaled(100.0, 20.0)
# An outage lasts while the line sends this many parcels: 3 s in CI, 2 minutes in the long run.
OUTAGE_PARCELS = scaled(300, 2400)
RESTARTS = scaled(4, 30)
DELIVERY_TIMEOUT_S = 60.0
MAX_INFLIGHT = 64  # the config's default mqtt.max_inflight
# Shortest keepalive the config allows: a half-open link is found within ~2 keepalives.
KEEPALIVE_S = 5
HALF_OPEN_DETECT_S = 4 * KEEPALIVE_S


@pytest.fixture
def setup(request, tmp_path: Path):
    persistence = getattr(request, "param", False)
    broker = MosquittoBroker(tmp_path / "broker", persistence=persistence,
                             extra_config=CENTRAL_BROKER_CONFIG).start()
    proxy = TcpProxy(broker.host, broker.port)
    parts: dict = {"broker": broker, "proxy": proxy, "tmp": tmp_path}
    yield parts
    for name in ("central", "sim"):
        if name in parts:
            parts[name].close()
    proxy.close()
    broker.close()


def _line(parts: dict, parcels: int) -> tuple[LineSimulation, Central]:
    sim = LineSimulation(parts["tmp"] / "line", parcel_mix(parcels, seed=31), rate=RATE,
                         broker=f"127.0.0.1:{parts['proxy'].port}")
    sim.prepare()
    text = sim.config_path.read_text().replace(
        "telemetry_period_s = 2.0",
        f"telemetry_period_s = 1.0\nkeepalive_s = {KEEPALIVE_S}\nreconnect_max_s = 1.0")
    sim.config_path.write_text(text)
    broker = parts["broker"]
    central = Central(broker.host, broker.port, load_config(sim.config_path).topic_prefix)
    parts["sim"], parts["central"] = sim, central
    return sim, central


def _mqtt_connected(sim: LineSimulation) -> bool | None:
    try:
        return query_status(sim.state_dir / "status.sock", timeout_s=1.0)["mqtt"]["connected"]
    except (StatusError, KeyError):
        return None


def _outage(parts: dict, sim: LineSimulation, central: Central, parcels: int) -> None:
    broker, proxy = parts["broker"], parts["proxy"]
    proxy.hold()
    broker.stop()
    sent = sim.results.sent
    wait_for(lambda: sim.results.sent >= sent + parcels or sim.results.sent >= len(sim.parcels),
             timeout_s=parcels / RATE + 30, what="the outage's parcels")
    broker.start()
    wait_for(central.resubscribed_since_restart, what="central back")
    proxy.release()


def _run(parts: dict, parcels: int, inject) -> None:
    sim, central = _line(parts, parcels)
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        driver = threading.Thread(target=sim.drive, daemon=True)
        driver.start()
        inject(sim, central)
        driver.join()
        assert sim.wait_for_lane_commands() == parcels, agent.log_tail()
        commanded = {r["parcel_id"]: r["bin"] for r in sorter_records(sim)}
        wait_for(lambda: set(commanded) <= set(central.parcels()),
                 timeout_s=DELIVERY_TIMEOUT_S, what="every event after the faults")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()
    arrivals = central.snapshot()
    assert wrong_bins(central.parcels(), commanded) == []
    assert unannounced_seq_gaps(arrivals) == []
    # In order: published in seq order. Only a re-send of one of the (at most max_inflight)
    # messages in flight when the link broke may reach central after later seqs.
    highest, behind = 0, []
    seen: set[str] = set()
    for arrival in arrivals:
        if arrival.event["event_id"] not in seen:
            seen.add(arrival.event["event_id"])
            if arrival.event["seq"] < highest:
                behind.append(highest - arrival.event["seq"])
            highest = max(highest, arrival.event["seq"])
    assert max(behind, default=0) <= MAX_INFLIGHT, behind


@pytest.mark.parametrize("setup", [False, True], indirect=True,
                         ids=["broker-without-persistence", "broker-persistent"])
def test_broker_down_for_a_while_then_everything_arrives_in_order(setup):
    parcels = OUTAGE_PARCELS * 2

    def inject(sim, central):
        wait_for(lambda: sim.results.sent >= OUTAGE_PARCELS // 3, what="traffic before",
                 timeout_s=OUTAGE_PARCELS / 3 / RATE + 30)
        _outage(setup, sim, central, OUTAGE_PARCELS)

    _run(setup, parcels, inject)


def test_broker_restarted_again_and_again(setup):
    parcels = RESTARTS * 60 + 100

    def inject(sim, central):
        for restart in range(RESTARTS):
            wait_for(lambda r=restart: sim.results.sent >= 50 + r * 60, what="traffic")
            _outage(setup, sim, central, 20)

    _run(setup, parcels, inject)


def test_half_open_network_is_detected_and_the_link_recovers(setup):
    parcels = 300 + int(RATE * HALF_OPEN_DETECT_S)

    def inject(sim, central):
        wait_for(lambda: sim.results.sent >= 100, what="traffic before")
        setup["proxy"].blackhole()
        # The agent's keepalive must notice the silence and drop the connection.
        wait_for(lambda: _mqtt_connected(sim) is False, timeout_s=HALF_OPEN_DETECT_S,
                 what="the agent noticing the half-open link")
        setup["proxy"].forward()

    _run(setup, parcels, inject)
