"""The running agent: devices -> pairing -> decision -> outbox -> lane command -> MQTT.

One thread, the decision loop, owns the line's state. It reads every serial port through the
device hub's selector, stamps each chunk with its arrival time, pairs scans with weights by
those stamps, decides, and commands the sorter. Why one thread: with a thread per port,
scanner and scale race, and a parcel can pick up its predecessor's weight; here the only order
that matters is the arrival stamp, and nothing else touches the state, so nothing needs a lock.

Other threads never touch that state: paho's network thread and the MQTT publisher read only
the outbox (their own SQLite connection and lock); commands from central wait in an inbox that
this loop drains; the status server reads a snapshot dict this loop replaces whole.

Order on the hot path: the decision's event is appended to the outbox (in the OS's hands, so a
kill -9 cannot lose it) before the lane command is written to the sorter; then the publisher is
woken. Deciding never waits on the network or on an fsync.
"""

from __future__ import annotations

import gc
import math
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.messages import (
    DecodeError,
    DestinationRequest,
    DwsRecord,
    LaneFull,
    LinkMessage,
    Scan,
    SorterAck,
    SorterOutcome,
    SortReport,
    Weight,
)
from edge_agent.errors import EdgeAgentError
from edge_agent.ids import new_id
from edge_agent.runtime import rules_store
from edge_agent.runtime.clock import clock_check
from edge_agent.runtime.components import Components, build_components
from edge_agent.runtime.destinations import DestinationService
from edge_agent.runtime.input_health import InputHealth
from edge_agent.runtime.line_state import LaneStates, LineCounters
from edge_agent.runtime.outcome_ledger import OutcomeLedger, outcomes_in_outbox
from edge_agent.runtime.outcome_rates import RateChange
from edge_agent.runtime.outcomes import OutcomeTracker
from edge_agent.runtime.parcel_alarms import ParcelAlarms
from edge_agent.runtime.status_server import StatusServer
from edge_agent.sorting.decision import Decision, Parcel, decide, identifier_of
from edge_agent.sorting.dws_parcels import DWS_RECORD, parcel_from_dws
from edge_agent.sorting.hold_store import KEEP_EXPIRED_S
from edge_agent.sorting.holds import Hold, HoldIndex
from edge_agent.sorting.labels import resolve_labels
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.pairing import Pairer
from edge_agent.sorting.rules import RulesError, RuleSet
from edge_agent.sync.command_checks import capped_problems
from edge_agent.units import NS_PER_MS, NS_PER_S

log = structlog.get_logger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)

# The loop wakes at least this often for housekeeping (device states, timers).
HOUSEKEEPING_S = 0.1
# The status snapshot, systemd's STATUS line and the watchdog ping are renewed this often: a
# technician reads seconds, systemd's watchdog wants a ping every WatchdogSec/2 (5 s), and
# each renewal costs system calls and a few hundred microseconds of the loop.
REPORT_PERIOD_S = 0.5
# How long another thread (paho, the publisher, the outbox flusher) may keep the GIL while the
# decision loop waits for it. CPython's default, 5 ms, put whole milliseconds into lane-command
# latency every time the loop came back from a system call; 0.5 ms costs a few more switches.
# The line counts as quiet once no parcel was decided for this long (the command worker's first
# start waits for that, see runtime.command_worker).
LINE_QUIET_S = 1.0
GIL_SWITCH_INTERVAL_S = 0.0005
# The latency percentiles in the status snapshot are recomputed this often, not at every
# housekeeping turn: no reader (status screen, telemetry) looks more often, though reading them
# is now a walk over the window's histogram (latency_window.py), not a sort of its samples.
LATENCY_REFRESH_S = 1.0
# A clean stop waits at most this long for parcels in flight and their sorter acks.
STOP_DRAIN_S = 3.0
# How often the kernel is asked whether the wall clock is synchronised (one system call).
CLOCK_CHECK_S = 1.0
# At most one `pairing_traffic_too_close` alarm this often while scans keep coming too close.
TOO_CLOSE_ALARM_PERIOD_S = 60.0


class Agent:
    """The decision loop and everything it owns. Build with `Agent.from_config(config)`."""

    def __init__(self, config: AgentConfig, parts: Components, *,
                 wall_clock: Callable[[], datetime] = _utc_now):
        self.config = config
        # Decisions read the wall clock (cutoffs); tests and replays inject their own.
        self._wall_clock = wall_clock
        self.parts = parts
        self.hub: DeviceHub = parts.hub
        self.rules = parts.rules
        self.rules_source = parts.rules_source
        self.lanes = LaneStates(config.state_dir)
        self.lanes.use_rules(self.rules)
        self.counters = LineCounters()
        # Central's holds as the store had them at start; commands change both (the store on
        # the worker, this index in a step on the loop). Those expired within the last week are
        # loaded too: whether a hold expired is judged at each parcel by a clock that may be
        # wrong at boot (_hold_time).
        self.holds = HoldIndex(parts.holds.active(wall_clock().timestamp() - KEEP_EXPIRED_S)
                               if parts.holds is not None else ())
        self._parcel_alarms = ParcelAlarms(self._raise_alarm)
        self.pairer = Pairer(config.pairing, new_parcel_id=new_id, wall_clock=wall_clock)
        self.health = InputHealth(config.health)
        self._clock_check = clock_check(config.clock)
        self._clock_synchronised: bool | None = self._clock_check()
        self._next_clock_check = 0.0
        self._link_problem: str | None = None  # the link's config_problem at the last look
        self._too_close_reported = 0  # scans_too_close at the last alarm
        self._next_too_close_alarm = 0.0
        self.started_at = wall_clock()
        self._started_ns = time.monotonic_ns()
        self._awaiting_ack: dict[str, tuple[int, int]] = {}  # parcel id -> (bin, deadline ns)
        self._ack_timeout_ns = config.sorter.ack_timeout_ms * NS_PER_MS
        ledger, waiting = OutcomeLedger.open(
            config.state_dir, lambda: outcomes_in_outbox(parts.outbox))
        self.outcomes = OutcomeTracker(config.sorter, ledger, waiting, self._emit_outcome,
                                       self.lanes.lane_for_bin)
        sorter = parts.device_for_role.get("sorter")
        self.destinations = None  # a sorter that asks for destinations (sorter-host)
        if sorter is not None and self.hub.ports[sorter].codec.sorter_driven:
            self.destinations = DestinationService(self, sorter)
        self._device_states: dict[str, str] = {}
        self._scale_connection = 0  # the scale port's connection_number at the last poll
        self._stop_requested = False
        self._closed = False
        self._reload_requested = False
        self._next_housekeeping = 0.0
        self._next_report = 0.0
        self._latency_view: dict[str, Any] = {}
        self._next_latency_view = 0.0
        self._next_telemetry = time.monotonic() + config.mqtt.telemetry_period_s
        # Replaced whole by the loop; the status server (its own thread) only reads it.
        self.snapshot: dict[str, Any] = {}
        self.status_server = StatusServer(config.status_socket, lambda: self.snapshot)
        for worker in (parts.command_prep, parts.command_worker):
            if worker is not None:  # its alarms go where the loop's go
                worker.raise_alarm = self._raise_alarm
        self._parcels_seen = (0, time.monotonic())
        if parts.command_worker is not None:
            parts.command_worker.line_busy = self._line_busy

    @classmethod
    def from_config(cls, config: AgentConfig, **options: Any) -> Agent:
        return cls(config, build_components(config), **options)

    # -- life cycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)
        parts = self.parts
        if parts.inbox is not None:
            parts.inbox.start()
        if parts.link is not None:
            parts.link.start()
            self._check_link_config()
        self.status_server.start()
        self._housekeeping(force=True)
        # Everything built so far lives as long as the process (models, rules, profiles): take
        # it out of the collector's view, so a full collection never walks it in the middle of
        # a parcel's decision. No collection first: it took ~25 ms of the time to READY to
        # free ~300 objects of start-up garbage, which stay frozen instead.
        gc.freeze()
        gc.enable()  # `edge-agent run` starts with it off
        if self._clock_synchronised is False:
            self._raise_clock_alarm()
        parts.notifier.ready(self._status_line())
        log.info("agent.ready", rules_version=self.rules.version, rules_source=self.rules_source,
                 devices=sorted(self.hub.ports), startup_s=round(self._uptime_s(), 3))
        try:
            while not self._stop_requested:
                self.step()
            self._drain_before_stop()
        finally:
            self.close()
        return 0

    def step(self, max_wait_s: float = HOUSEKEEPING_S) -> None:
        """One turn of the loop: read what arrived, decide what is due, keep house."""
        for name, message in self.hub.poll(self._wait_s(max_wait_s)):
            self._on_message(name, message)
        now_ns = time.monotonic_ns()
        for parcel in self.pairer.ready(now_ns):
            self._decide_and_divert(parcel)
        if self.pairer.polled and self.pairer.pending_count():
            self._poll_scale()  # a reply or a time-out may have freed the scale for the next
        if self._awaiting_ack:
            self._check_acks(now_ns)
        if self.outcomes.waiting_count():
            self.on_outcome_changes(self.outcomes.expire(now_ns))
        if self.parts.inbox is not None and self.parts.inbox.has_waiting():
            self.parts.inbox.process(self)
            self._next_report = 0.0  # what a command changed shows at once
        if self._reload_requested:
            self._reload_rules()
        self._housekeeping()

    def request_stop(self) -> None:
        self._stop_requested = True

    def request_reload(self) -> None:
        """What SIGHUP does: re-read the configured rules file on the next turn of the loop."""
        self._reload_requested = True

    def close(self) -> None:
        """Release everything; safe to call twice (a stop path and a finally may both call it)."""
        if self._closed:
            return
        self._closed = True
        self._parcel_alarms.flush(time.monotonic(), everything=True)
        parts = self.parts
        parts.notifier.stopping()
        for name in self.hub.ports:
            self._publish_device_state(name, "stopped")
        self.hub.close()
        self.status_server.stop()
        if parts.link is not None:
            parts.link.stop()
        if parts.inbox is not None:
            parts.inbox.close()
        self.outcomes.close()
        parts.outbox.close()
        parts.manifest.close()
        if parts.holds is not None:
            parts.holds.close()
        if parts.state_lock is not None:
            parts.state_lock.release()
        log.info("agent.stopped", parcels=self.counters.totals["parcels"])

    def _drain_before_stop(self) -> None:
        """Stop taking scans, decide the parcels in flight, wait briefly for their acks."""
        log.info("agent.stopping", in_flight=self.pairer.pending_count(),
                 awaiting_ack=len(self._awaiting_ack))
        self.parts.notifier.stopping()
        deadline = time.monotonic() + STOP_DRAIN_S
        while time.monotonic() < deadline and (
            self.pairer.pending_count() or self._awaiting_ack
        ):
            self.step(max_wait_s=0.02)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self._stop_requested = True

    def _on_reload_signal(self, signum: int, frame: object) -> None:
        self.request_reload()

    # -- messages from devices ---------------------------------------------------------------

    def _on_message(self, device: str, message: object) -> None:
        role = self.parts.roles.get(device)
        if isinstance(message, Scan):
            if self._stop_requested:
                self.counters.totals["scans_refused_stopping"] += 1
                return
            self.counters.totals["scans"] += 1
            if self.pairer.on_scan(message, self.hub.stamp_error_ns) and self.pairer.polled:
                self._poll_scale()
        elif isinstance(message, Weight):
            self.counters.totals["weights"] += 1
            self.pairer.on_weight(message, self.hub.stamp_error_ns)
        elif isinstance(message, DwsRecord):
            self._on_dws_record(message)
        elif isinstance(message, SorterAck):
            self._on_sorter_ack(message)
        elif isinstance(message, SorterOutcome):
            self.on_outcome_changes(self.outcomes.confirmed(message))
        elif self.destinations is not None and isinstance(message, DestinationRequest):
            self.destinations.on_request(message)
        elif self.destinations is not None and isinstance(message, SortReport):
            self.destinations.on_report(message)
        elif self.destinations is not None and isinstance(message, LinkMessage):
            self.destinations.on_link(message)
        elif isinstance(message, LaneFull):
            self.lanes.set_bin_full(message.bin, message.full)
            log.info("lane.full" if message.full else "lane.cleared", bin=message.bin,
                     lane=self.lanes.lane_for_bin(message.bin))
        elif isinstance(message, DecodeError):
            self.counters.totals["decode_errors"] += 1
            if role == "scale":
                self.pairer.on_garbled(message.received_ns)  # it may be a garbled reply
            log.warning("device.bad_frame", device=device, role=role, reason=message.reason,
                        raw=message.raw.hex())

    def _on_dws_record(self, record: DwsRecord) -> None:
        """A DWS unit's record is a whole parcel: decided at once, nothing to pair."""
        if self._stop_requested:
            self.counters.totals["scans_refused_stopping"] += 1
            return
        self.counters.totals["dws_records"] += 1
        self.pairer.counts[DWS_RECORD] += 1  # the outcome counts, as the paired ones do
        self._decide_and_divert(parcel_from_dws(
            record, new_id(), self._wall_clock(), self.config.pairing.min_weight_kg))

    def _poll_scale(self) -> None:
        """Poll mode: send the scale the request pairing allows now (one at a time)."""
        scale = self.parts.device_for_role.get("scale")
        if scale is None:
            return
        port = self.hub.ports[scale]
        now_ns = time.monotonic_ns()
        if port.connection_number != self._scale_connection:
            # A request sent on an earlier connection lost its reply with it.
            self.pairer.abandon_polls(now_ns)
            self._scale_connection = port.connection_number
        if not self.pairer.next_request(now_ns):
            return
        request = port.codec.stable_weight_request()
        if request is None or not self.hub.send(scale, request):
            self.counters.totals["scale_unreachable"] += 1
            self.pairer.request_failed(now_ns)  # the scale is gone: nothing will answer

    def _on_sorter_ack(self, ack: SorterAck) -> None:
        if not ack.accepted:  # the sorter will not divert it: that is the parcel's outcome
            self.on_outcome_changes(self.outcomes.agent_outcome(ack.parcel_id, "refused"))
        expected = self._awaiting_ack.pop(ack.parcel_id, None)
        if expected is None:
            self.counters.totals["acks_unexpected"] += 1
            return
        if ack.accepted and ack.bin == expected[0]:
            self.counters.totals["acks"] += 1
            return
        self.counters.totals["naks"] += 1
        self._parcel_alarms.report(
            "sorter_refused", "warning", "the sorter refused the lane command",
            {"parcel_id": ack.parcel_id, "bin": expected[0], "ack_bin": ack.bin,
             "raw": ack.raw.decode("ascii", "replace").strip()}, {}, time.monotonic())

    def _check_acks(self, now_ns: int) -> None:
        # Deadlines grow in insertion order (one timeout for all), so the overdue ones lead.
        missing = []
        for parcel_id, (_, deadline) in self._awaiting_ack.items():
            if now_ns <= deadline:
                break
            missing.append(parcel_id)
        for parcel_id in missing:
            bin_, _ = self._awaiting_ack.pop(parcel_id)
            self.counters.totals["acks_missing"] += 1
            self._parcel_alarms.report(
                "sorter_ack_missing", "warning", "no acknowledgement from the sorter",
                {"parcel_id": parcel_id, "bin": bin_},
                {"timeout_ms": self.config.sorter.ack_timeout_ms}, now_ns / NS_PER_S)

    # -- the decision --------------------------------------------------------------------------

    def _line_busy(self) -> bool:
        """Whether a parcel was decided within LINE_QUIET_S (asked from the inbox's thread)."""
        parcels, since = self._parcels_seen
        now = time.monotonic()
        if self.counters.totals["parcels"] != parcels:
            self._parcels_seen = (self.counters.totals["parcels"], now)
            return True
        return now - since < LINE_QUIET_S

    def wall_time(self) -> datetime:
        return self._wall_clock()

    def decide(self, parcel: Parcel) -> tuple[Parcel, Decision]:
        """The decision core: the label that names the parcel, its manifest entry, the rules.
        Returns the parcel as resolved (its barcode: the label chosen) and the decision."""
        if parcel.labels:  # several labels read: the one that names the parcel
            rules = self.rules
            parcel, identifier, entry = resolve_labels(
                parcel, self.parts.manifest.get, rules.label_priority, rules.trust_known_label)
        else:  # parsed once: the manifest key and the decision's
            identifier = identifier_of(parcel)
            entry = self.parts.manifest.get(identifier.key)
        now = self._wall_clock()
        hold = None
        if self.holds:  # most of the time there is none: no look-up at all
            hold = self.holds.find(identifier.key, entry.order_id if entry else None,
                                   self._hold_time(now))
            if hold is not None:
                self.counters.totals["parcels_held"] += 1
        decision = decide(
            parcel, self.rules, entry, self.lanes.snapshot, now,
            default_country=self.config.default_destination_country,
            timezone=self.config.timezone, identifier=identifier,
            clock_synchronised=self._clock_synchronised, hold=hold,
        )
        return parcel, decision

    def _decide_and_divert(self, parcel: Parcel) -> Decision:
        parcel, decision = self.decide(parcel)
        sorter = self.parts.device_for_role.get("sorter")
        command = None
        if sorter is not None:
            command, decision = self._lane_command(sorter, parcel, decision)
            # Before the decision's event: a kill between the two leaves no event without its
            # outcome to come (outcome_ledger).
            self.outcomes.expect(parcel.parcel_id, decision.lane, decision.bin,
                                 time.monotonic_ns())
        self.parts.outbox.append("parcel", decision.to_dict())
        sent = False
        if command is not None:
            sent = self.hub.send(sorter, command)
        now_ns = time.monotonic_ns()
        if sent:
            self._awaiting_ack[parcel.parcel_id] = (decision.bin, now_ns + self._ack_timeout_ns)
        elif sorter is not None:  # not taken, or no command the sorter could carry
            self.counters.totals["sorter_unreachable"] += 1
            self.on_outcome_changes(self.outcomes.agent_outcome(parcel.parcel_id, "not_commanded"))
            self._parcel_alarms.report(
                "sorter_unreachable", "critical", "the sorter did not take the lane command "
                "(disconnected, or not reading): a decided parcel was not diverted",
                {"parcel_id": parcel.parcel_id, "bin": decision.bin}, {}, now_ns / NS_PER_S)
        self.after_decision(parcel, decision, now_ns)
        return decision

    def after_decision(self, parcel: Parcel, decision: Decision,
                       now_ns: int | None = None) -> None:
        """Once the event is stored and the sorter told: wake the publisher, count."""
        if self.parts.link is not None:
            self.parts.link.notify_appended()
        latency_us = ((now_ns or time.monotonic_ns()) - parcel.scanned_ns) / 1000
        self.counters.record_decision(decision, latency_us, self.rules.exception_lane)
        self.health.record(decision)

    def _lane_command(self, sorter: str, parcel: Parcel,
                      decision: Decision) -> tuple[bytes | None, Decision]:
        """The sorter's command for a decision. Rules are checked against the sorter's reach
        before they are used, so this is a last guard: a bin the protocol cannot carry sends
        the parcel to the exception lane (or nowhere, with an alarm) instead of ending the
        loop."""
        codec = self.hub.ports[sorter].codec
        try:
            return codec.lane_command(parcel.parcel_id, decision.bin, parcel.barcode), decision
        except (ValueError, EdgeAgentError) as exc:
            problem = str(exc)
        exception = self.rules.lanes[self.rules.exception_lane]
        self._parcel_alarms.report(
            "lane_command_failed", "critical", "the sorter cannot carry the decided bin; the "
            "parcel goes to the exception lane", {"parcel_id": parcel.parcel_id,
                                                  "bin": decision.bin, "problem": problem},
            {}, time.monotonic())
        decision = decision._replace(lane=exception.name, bin=exception.bin,
                                     reasons=(*decision.reasons, "bin_not_addressable"))
        try:
            return codec.lane_command(parcel.parcel_id, exception.bin, parcel.barcode), decision
        except (ValueError, EdgeAgentError):
            return None, decision  # counted and alarmed as sorter_unreachable below

    def _emit_outcome(self, payload: dict[str, Any]) -> None:
        self.parts.outbox.append("outcome", payload)
        if self.parts.link is not None:
            self.parts.link.notify_appended()

    def on_outcome_changes(self, changes: list[RateChange]) -> None:
        for change in changes:
            self._raise_alarm(change.alarm, "warning" if change.raised else "info",
                              change.message(), {
                                  "state": "raised" if change.raised else "cleared",
                                  "lane": change.lane, "outcome": change.outcome,
                                  "value": round(change.value, 4), "limit": change.limit,
                                  "parcels": change.parcels})

    def _raise_alarm(self, alarm: str, severity: str, message: str, details: dict) -> None:
        log.warning("alarm", alarm=alarm, severity=severity, message=message, **details)
        self.parts.outbox.append(
            "alarm", {"alarm": alarm, "severity": severity, "message": message, "details": details}
        )
        if self.parts.link is not None:
            self.parts.link.notify_appended()

    # -- commands from central (CommandTarget): quick steps, run on this thread -----------------
    # (What takes long, parsing and persisting, ran on the command worker: command_prep.)

    def swap_rules(self, rules: RuleSet) -> str:
        self._use_rules(rules, "rules.apply")
        return rules.version

    def set_lane(self, lane: str, state: LaneState) -> None:
        try:
            self.lanes.set_by_central(lane, state)
        except KeyError:
            known = ", ".join(self.rules.lanes)
            raise ValueError(f"unknown lane {lane!r}; lanes: {known}") from None
        log.info("lane.set", lane=lane, state=state.value)

    def apply_holds(self, put: list[Hold], lifted: list[str]) -> int:
        for hold in put:
            self.holds.put(hold)
        for hold_id in lifted:
            self.holds.lift(hold_id)
        self.holds.purge(self._hold_time(self._wall_clock()))  # the count is of holds in force
        log.info("holds.changed", put=len(put), lifted=len(lifted), active=len(self.holds))
        return len(self.holds)

    def _hold_time(self, now: datetime) -> float:
        """The time holds' expiries are judged by: the wall clock, unless it is known to be
        unsynchronised (a Pi that booted hours ahead would end holds early): then no hold
        expires until it is synchronised again (fail safe: a held parcel stays held)."""
        return now.timestamp() if self._clock_synchronised is not False else -math.inf

    def status(self) -> dict[str, Any]:
        """`status.get`: a snapshot made now (the periodic one may be half a second old)."""
        self.snapshot = self._build_snapshot(self.hub.states())
        return self.snapshot

    def _use_rules(self, rules, source: str) -> None:
        self.rules, self.rules_source = rules, source
        self.lanes.use_rules(rules)
        if self.parts.link is not None:
            self.parts.link.publish_status(rules_version=rules.version)
        log.info("rules.swapped", version=rules.version, source=source)

    def _reload_rules(self) -> None:
        self._reload_requested = False
        try:
            rules, source = rules_store.configured_rules(self.config)
        except RulesError as exc:
            self._raise_alarm("rules_reload_refused", "warning",
                              "SIGHUP: the rules file is invalid; the current rules stay",
                              {"source": exc.source, "problems": capped_problems(exc.problems)[0],
                               "problems_total": len(exc.problems)})
            return
        rules_store.forget_pushed_rules(self.config)
        self._use_rules(rules, source)

    # -- housekeeping ---------------------------------------------------------------------------

    def _wait_s(self, max_wait_s: float) -> float:
        wait = max_wait_s
        deadline = self.pairer.next_deadline_ns()
        if deadline is not None:
            wait = min(wait, max(0.0, (deadline - time.monotonic_ns()) / NS_PER_S))
        if self._awaiting_ack:
            wait = min(wait, 0.01)
        outcome_due = self.outcomes.next_deadline_ns()
        if outcome_due is not None:
            wait = min(wait, max(0.0, (outcome_due - time.monotonic_ns()) / NS_PER_S))
        return wait

    def _housekeeping(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_S
        self._parcel_alarms.flush(now)
        changed = self._check_inputs(now)  # what it raised shows in the status at once
        changed = self._check_link_config() or changed
        states = self.hub.states()
        for name, state in states.items():
            if self._device_states.get(name) != state["state"]:
                self._device_states[name] = str(state["state"])
                self._publish_device_state(name, str(state["state"]), state)
                changed = True
        if self.parts.link is not None and now >= self._next_telemetry:
            self._next_telemetry = now + self.config.mqtt.telemetry_period_s
            self.parts.link.publish_telemetry(self._telemetry())
        if not (force or changed or now >= self._next_report):
            return
        self._next_report = now + REPORT_PERIOD_S
        if self.parts.inbox is not None:
            self.parts.inbox.ensure_running()  # commands' liveness: not the watchdog's business
        # Reaching this line proves the loop turns (the serial reads are part of it).
        watchdog = self.parts.watchdog
        watchdog.alive("decision_loop")
        if self.parts.link is None or self.parts.link.alive():
            watchdog.alive("mqtt")
        self.snapshot = self._build_snapshot(states)
        watchdog.tick()
        self.parts.notifier.status(self._status_line())

    def _check_inputs(self, now: float) -> bool:
        """The clock's synchronisation, input health and pairing separation, with alarms;
        True when an alarm was raised or cleared."""
        changed = False
        if now >= self._next_clock_check:
            self._next_clock_check = now + CLOCK_CHECK_S
            synchronised = self._clock_check()
            if synchronised != self._clock_synchronised:
                self._clock_synchronised = synchronised
                self._raise_clock_alarm()
                changed = True
        for change in self.health.check():
            changed = True
            self._raise_alarm(change.alarm, "warning" if change.raised else "info",
                              change.message(), {"state": "raised" if change.raised
                                                 else "cleared", "value": round(change.value, 4),
                                                 "limit": change.limit,
                                                 "parcels": change.samples})
        too_close = self.pairer.counts["scans_too_close"]
        if too_close > self._too_close_reported and now >= self._next_too_close_alarm:
            pairing = self.config.pairing
            self._raise_alarm(
                "pairing_traffic_too_close", "warning",
                "parcels come closer together than the pairing settings can tell apart: their "
                "weights are refused (weight_ambiguous); run `edge-agent diag pairing`",
                {"scans_too_close": too_close - self._too_close_reported,
                 "window_ms": pairing.window_ms, "offset_ms": pairing.offset_ms})
            self._too_close_reported = too_close
            self._next_too_close_alarm = now + TOO_CLOSE_ALARM_PERIOD_S
            changed = True
        return changed

    def _check_link_config(self) -> bool:
        """Alarms for the link's file problem appearing, changing or going (the link retries
        its files by itself); True when one was raised."""
        link = self.parts.link
        problem = link.config_problem if link is not None else None
        if problem == self._link_problem:
            return False
        if problem is not None:
            self._raise_alarm("mqtt_config_error", "critical", "the MQTT link cannot start: "
                              "the line sorts, events wait in the outbox; the link starts once "
                              "the file is right", {"problem": problem})
        else:
            self._raise_alarm("mqtt_config_fixed", "info", "the MQTT link's files are right "
                              "again: the link started", {"problem_was": self._link_problem})
        self._link_problem = problem
        return True

    def _raise_clock_alarm(self) -> None:
        if self._clock_synchronised is False:
            self._raise_alarm(
                "clock_unsynchronised", "warning",
                "the wall clock is not synchronised (NTP): time rules take their safe branch",
                {"source": self.config.clock.source})
        elif self._clock_synchronised:
            self._raise_alarm("clock_synchronised", "info", "the wall clock is synchronised",
                              {"source": self.config.clock.source})

    def _publish_device_state(self, name: str, state: str, details: dict | None = None) -> None:
        log.info("device.state", device=name, state=state)
        if self.parts.link is not None:
            self.parts.link.publish_device_state(name, {"state": state, "details": details or {}})

    def _status_line(self) -> str:
        totals = self.counters.totals
        devices = ", ".join(f"{n} {s}" for n, s in sorted(self._device_states.items()))
        return f"{totals['parcels']} parcels; rules {self.rules.version}; {devices}"

    def _uptime_s(self) -> float:
        return (time.monotonic_ns() - self._started_ns) / NS_PER_S

    def _telemetry(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters.totals),
            "devices": dict(self._device_states),
            "lanes": self._lanes_view(),
            "outcomes": self.outcomes.view(),
            **self._inputs_view(),
        }

    def _inputs_view(self) -> dict[str, Any]:
        """How pairing went, input health and the clock: in the status and in telemetry."""
        pairing = self.config.pairing
        settings = {"mode": pairing.mode, "offset_ms": pairing.offset_ms,
                    "window_ms": pairing.window_ms}
        return {
            "pairing": {**settings, **self.pairer.counts},
            "input_health": self.health.view(),
            "clock": {"synchronised": self._clock_synchronised,
                      "source": self.config.clock.source},
            "holds": self.holds.view(self._hold_time(self._wall_clock())),
        }

    def _lanes_view(self) -> dict[str, dict[str, Any]]:
        return {
            name: {"state": self.lanes.snapshot.get(name, LaneState.OPEN).value, "bin": lane.bin,
                   "count": self.counters.by_lane[name]}
            for name, lane in self.rules.lanes.items()
        }

    def _latency_percentiles(self) -> dict[str, Any]:
        now = time.monotonic()
        if now >= self._next_latency_view:
            self._next_latency_view = now + LATENCY_REFRESH_S
            self._latency_view = self.counters.latency_percentiles()
        return self._latency_view

    def _build_snapshot(self, device_states: dict[str, dict[str, Any]]) -> dict[str, Any]:
        parts = self.parts
        return {
            "agent": {
                "version": __version__, "pid": parts.pid, "site": self.config.site,
                "line": self.config.line, "timezone": self.config.timezone,
                "started_at": self.started_at.isoformat(),
                "uptime_s": round(self._uptime_s(), 1), "rules_version": self.rules.version,
                "rules_source": self.rules_source, "stopping": self._stop_requested,
            },
            "devices": device_states,
            "lanes": self._lanes_view(),
            "counters": dict(self.counters.totals),
            "exceptions_by_reason": dict(self.counters.exceptions_by_reason),
            "latency": self._latency_percentiles(),
            "outbox": parts.outbox.stats(),
            "mqtt": parts.link.stats() if parts.link is not None else {"state": "disabled"},
            "commands": (parts.inbox.stats() if parts.inbox is not None
                         else {"state": "disabled"}),
            "in_flight": {"pairing": self.pairer.pending_count(),
                          "awaiting_ack": len(self._awaiting_ack),
                          "awaiting_outcome": self.outcomes.waiting_count()},
            "outcomes": self.outcomes.view(),
            "last_decisions": self.counters.recent_decisions(),
            **self._inputs_view(),
        }
