"""Holds against the running agent: `edge-agent run` as its own process, a DWS unit and a
sorter on ptys, central's commands through a real mosquitto.

A hold put by barcode and one by order id send their parcels to EXCEPTION with reason held and
central's reason in the event; a restart keeps them (they are on disk); lifted, the next parcel
sorts to its route again; the status shows the active holds. The manifest's air and customs
declarations reach the running agent too: lithium batteries never take the flying Shanghai
lane, a value over the personal postal limit goes to EXCEPTION.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from line_harness import AgentProcess, CentralClient, EventCollector, status_of, wait_for
from support.broker import MosquittoBroker, mosquitto  # noqa: F401
from test_dws_end_to_end import config_text, export_row

from edge_agent.devices.simulators import DwsSimulator, SorterSimulator
from edge_agent.simulation.line_sim import write_manifest
from edge_agent.sync.payloads import ParcelEvent

PREFIX = "sortline/v1/SIM/DWS1/"
HELD_BY_BARCODE = "LP00000000000201"
HELD_BY_ORDER = "LP00000000000202"
WITH_BATTERIES = "LP00000000000203"
OVER_CUSTOMS_LIMIT = "LP00000000000204"
EXCEPTION_BIN, EXPORT_BIN = 4, 3


def _manifest() -> list:
    by_order = export_row(HELD_BY_ORDER, 2.0)
    by_order.manifest["order_id"] = "ORD-7"
    mainland = {"country": "CN", "postal_code": "510000"}  # Guangzhou: the SHANGHAI lane
    batteries = export_row(WITH_BATTERIES, 2.0)
    batteries.manifest.update(mainland, dangerous_goods=["lithium_battery"])
    valuable = export_row(OVER_CUSTOMS_LIMIT, 2.0)
    valuable.manifest.update(mainland, declared_value=900, currency="CNY",
                             customs_mode="personal_postal")
    return [export_row(HELD_BY_BARCODE, 2.0), by_order, batteries, valuable]


def _connected(state_dir: Path) -> bool:
    devices = status_of(state_dir).get("devices")
    return bool(devices) and len(devices) == 2 and all(
        d["state"] == "connected" for d in devices.values())


def test_a_hold_sends_the_parcel_to_exception_survives_a_restart_and_lifts(
    tmp_path: Path, mosquitto: MosquittoBroker  # noqa: F811
):
    out = tmp_path / "line"
    (out / "dev").mkdir(parents=True)
    state_dir = out / "state"
    state_dir.mkdir()
    unit = DwsSimulator("generic-dws", out / "dev" / "dws", name="dws")
    sorter = SorterSimulator(out / "dev" / "sorter", name="sorter")
    collector = central = agent = None
    sent: list[str] = []

    def parcel_through(barcode: str):
        """One parcel through the unit: its lane command and its event."""
        unit.measure((barcode,), 2.0, (300.0, 200.0, 100.0))
        sent.append(barcode)
        commands = sorter.wait_for_commands(len(sent), timeout_s=30)
        assert len(commands) == len(sent), agent.log_tail()
        command = commands[-1]
        event = wait_for(lambda: collector.parcels.get(command.parcel_id), what="its event")
        ParcelEvent.model_validate(event)
        assert int(command.bin) == event["bin"] and event["barcode"] == barcode
        return event

    def start_agent() -> AgentProcess:
        process = AgentProcess(config, out / "agent.log").start()
        wait_for(lambda: _connected(state_dir), what="the agent with both devices connected")
        wait_for(lambda: central.statuses and central.statuses[-1].get("state") == "online"
                 and central.statuses[-1].get("started_at") not in started,
                 what="the agent online")
        started.add(central.statuses[-1].get("started_at"))
        return process

    try:
        unit.start()
        sorter.start()
        write_manifest(out, state_dir, _manifest())
        config = out / "agent.toml"
        config.write_text(config_text(unit.path, sorter.path, "generic-dws", mosquitto))
        collector = EventCollector(mosquitto.host, mosquitto.port, PREFIX)
        assert collector.wait_subscribed(10)
        central = CentralClient(mosquitto.host, mosquitto.port, PREFIX)
        started: set = set()
        agent = start_agent()

        assert parcel_through(HELD_BY_BARCODE)["lane"] == "EXPORT"  # no hold yet
        event = parcel_through(WITH_BATTERIES)
        assert (event["lane"], event["rule"], event["reasons"]) == (
            "EXCEPTION", "mainland_china", ["air_restricted"])
        assert event["inputs"]["dangerous_goods"] == ["lithium_battery"]
        event = parcel_through(OVER_CUSTOMS_LIMIT)
        assert (event["lane"], event["reasons"]) == ("EXCEPTION", ["customs_value_limit"])
        assert (event["inputs"]["customs_value"], event["inputs"]["customs_check"]) == (
            900.0, "over_limit")
        until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        reply = central.request("holds.put", "put-1", {"holds": [
            {"hold_id": "H1", "barcode": HELD_BY_BARCODE, "reason": "customs inspection",
             "expires_at": until},
            {"hold_id": "H2", "order_id": "ORD-7", "reason": "order cancelled",
             "expires_at": until}]})
        assert reply["ok"] and reply["result"] == {"put": 2, "active": 2}, reply

        for barcode, hold_id, reason in ((HELD_BY_BARCODE, "H1", "customs inspection"),
                                         (HELD_BY_ORDER, "H2", "order cancelled")):
            event = parcel_through(barcode)
            assert (event["lane"], event["bin"], event["rule"], event["reasons"]) == (
                "EXCEPTION", EXCEPTION_BIN, "held", ["held"])
            assert (event["inputs"]["hold_id"], event["inputs"]["hold_reason"]) == (
                hold_id, reason)
        wait_for(lambda: (s := status_of(state_dir)) and s["holds"]["active"] == 2
                 and s["counters"].get("parcels_held") == 2, what="the status counting them")

        assert agent.terminate() == 0, agent.log_tail()
        agent = start_agent()  # the holds were on disk before the reply said ok
        assert status_of(state_dir)["holds"]["active"] == 2
        assert parcel_through(HELD_BY_BARCODE)["reasons"] == ["held"]

        reply = central.request("holds.lift", "lift-1", {"hold_ids": ["H1"]})
        assert reply["ok"] and reply["result"] == {"lifted": 1, "not_found": 0, "active": 1}
        event = parcel_through(HELD_BY_BARCODE)
        assert (event["lane"], event["bin"]) == ("EXPORT", EXPORT_BIN)
        assert "hold_id" not in event["inputs"]
        assert parcel_through(HELD_BY_ORDER)["reasons"] == ["held"]  # the other hold stays
        wait_for(lambda: (s := status_of(state_dir)) and s["holds"]["active"] == 1
                 and s["holds"]["newest"]["hold_id"] == "H2", what="one hold left")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        if agent is not None:
            agent.ensure_stopped()
        for client in (collector, central):
            if client is not None:
                client.close()
        unit.stop()
        sorter.stop()
