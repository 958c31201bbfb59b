"""Sorter-driven parcels: the sorter tracks each one and asks where it goes (sorter-host).

Runs on the decision loop's thread, as part of it. For each destination request:
- a request re-sent unchanged (same tracking number and sequence) gets the very same reply
  bytes again: never a second decision (`requests_resent`);
- a parcel seen before (same tracking number; or, on a later pass, one of its barcodes) gets
  the same chute as before, no new decision (`requests_recirculated`), until
  its pass passes `sorter.max_passes`: then the exception chute (`recirculation_limit`); an
  answer after the deadline is the exception chute too, as for a new parcel (`requests_late`);
- a new parcel is decided by the same decision core as a DWS record, its outcome expected and
  its event stored (in that order, as for lane commands) before the reply is written. A reply
  made after the request's deadline sends the parcel to the exception lane (reason
  `reply_deadline_missed`, counted `requests_late`): the sorter has moved on by then.
Sort results are acknowledged (re-sent ones too, once per copy) and the final one becomes the
parcel's outcome; intermediate ones (recirculated) are counted. Heartbeats are acknowledged.

After a restart the parcels still waiting for their outcome are known again by tracking
number (the ledger keeps it), so their re-sent requests and next passes stay consistent.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from edge_agent.devices.messages import (
    DestinationRequest,
    DwsRecord,
    LinkMessage,
    SorterOutcome,
    SortReport,
)
from edge_agent.devices.sorter_host import ACK, REPLY
from edge_agent.ids import new_id
from edge_agent.runtime.outcome_rates import RateChange
from edge_agent.sorting.decision import Decision, Parcel
from edge_agent.sorting.dws_parcels import parcel_from_dws


class DecidingAgent(Protocol):
    """What the service uses of the running agent (runtime.agent.Agent), named here so that
    the two modules do not import each other."""

    hub: Any
    config: Any
    counters: Any
    outcomes: Any
    parts: Any
    rules: Any

    def wall_time(self) -> datetime: ...
    def decide(self, parcel: Parcel) -> tuple[Parcel, Decision]: ...
    def after_decision(self, parcel: Parcel, decision: Decision,
                       now_ns: int | None = None) -> None: ...
    def on_outcome_changes(self, changes: list[RateChange]) -> None: ...

# Replies kept for re-sent requests, and parcels kept for their next passes and late results.
REMEMBERED = 20_000
LATE_REASON = "reply_deadline_missed"


class Known(NamedTuple):
    parcel_id: str
    bin: int
    barcode: str | None


def _remember(table: OrderedDict, key: object, value: object) -> None:
    table[key] = value
    if len(table) > REMEMBERED:
        table.popitem(last=False)


class DestinationService:
    def __init__(self, agent: DecidingAgent, device: str):
        self._agent = agent
        self._device = device
        self._codec = agent.hub.ports[device].codec
        self._replies: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._parcels: OrderedDict[str, Known] = OrderedDict()  # by tracking number
        self._by_barcode: OrderedDict[str, str] = OrderedDict()  # barcode -> tracking
        self._results_seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        for entry in agent.outcomes.waiting_with_keys():
            _remember(self._parcels, entry.key, Known(entry.parcel_id, entry.bin, None))

    # -- messages from the sorter --------------------------------------------------------------

    def on_request(self, request: DestinationRequest) -> None:
        totals = self._agent.counters.totals
        totals["destination_requests"] += 1
        cached = self._replies.get((request.tracking, request.seq))
        if cached is not None:
            totals["requests_resent"] += 1
            self._send(cached)
            return
        known = self._parcels.get(request.tracking)
        if known is None and request.pass_count > 1:
            # A later pass under a new tracking number (the sorter lost and found it): the
            # parcel is known by its label. On a first pass the same label is another parcel
            # (a reused or duplicated label): it is decided on its own, never given another's
            # answer.
            known = next((self._parcels[tracking] for b in request.barcodes
                          if (tracking := self._by_barcode.get(b)) in self._parcels), None)
        if known is not None:
            self._answer_again(request, known)
            return
        self._decide(request)

    def on_report(self, report: SortReport) -> None:
        totals = self._agent.counters.totals
        self._send(self._codec.host_message(ACK, report.seq))
        key = (report.tracking, report.seq)
        if key in self._results_seen:  # our ACK was lost: acknowledged again, counted once
            totals["results_resent"] += 1
            return
        _remember(self._results_seen, key, None)
        known = self._parcels.get(report.tracking)
        if known is None:
            self._agent.outcomes.counts["confirmations_unknown"] += 1
            return
        if not report.final:
            totals["results_intermediate"] += 1
            return
        outcome = SorterOutcome(known.parcel_id, report.outcome, known.bin, report.chute,
                                report.pass_count if report.pass_count > 1 else None,
                                report.sorter_time, report.raw, report.received_ns)
        self._agent.on_outcome_changes(self._agent.outcomes.confirmed(outcome))

    def on_link(self, message: LinkMessage) -> None:
        if message.heartbeat:
            self._agent.counters.totals["heartbeats"] += 1
            self._send(self._codec.host_message(ACK, message.seq))

    # -- answers ---------------------------------------------------------------------------

    def _decide(self, request: DestinationRequest) -> None:
        agent = self._agent
        record = DwsRecord(request.barcodes, not request.barcodes, request.weight_kg,
                           request.length_mm, request.width_mm, request.height_mm,
                           received_ns=request.received_ns)
        parcel = parcel_from_dws(record, new_id(), agent.wall_time(),
                                 agent.config.pairing.min_weight_kg)
        parcel, decision = agent.decide(parcel)
        now_ns = time.monotonic_ns()
        late = now_ns > request.received_ns + request.deadline_ms * 1_000_000
        if late:
            agent.counters.totals["requests_late"] += 1
            exception = agent.rules.lanes[agent.rules.exception_lane]
            decision = decision._replace(lane=exception.name, bin=exception.bin,
                                         reasons=(*decision.reasons, LATE_REASON))
        agent.outcomes.expect(parcel.parcel_id, decision.lane, decision.bin, now_ns,
                              key=request.tracking)
        agent.parts.outbox.append("parcel", {**decision.to_dict(),
                                             "sorter_tracking": request.tracking})
        known = Known(parcel.parcel_id, decision.bin, decision.barcode)
        reply = self._reply(request, [decision.bin], known.barcode, late)
        _remember(self._parcels, request.tracking, known)
        for barcode in request.barcodes:
            _remember(self._by_barcode, barcode, request.tracking)
        if not self._send(reply):
            agent.counters.totals["sorter_unreachable"] += 1
        agent.after_decision(parcel, decision)

    def _answer_again(self, request: DestinationRequest, known: Known) -> None:
        """A later pass of a parcel already decided: the same chute, or after too many rounds
        the exception chute. No new decision, no new event: its outcome is still to come."""
        totals = self._agent.counters.totals
        chute = known.bin
        if request.pass_count > self._agent.config.sorter.max_passes:
            totals["recirculation_limit"] += 1
            chute = self._exception_bin()
        else:
            totals["requests_recirculated"] += 1
        late = time.monotonic_ns() > request.received_ns + request.deadline_ms * 1_000_000
        if late:  # the sorter has used its fallback by now; say the same, as a late decision
            totals["requests_late"] += 1
            chute = self._exception_bin()
        _remember(self._parcels, request.tracking, known)
        self._send(self._reply(request, [chute], known.barcode, late))

    def _reply(self, request: DestinationRequest, chutes: list[int], barcode: str | None,
               late: bool) -> bytes:
        reply = self._codec.host_message(REPLY, request.seq, {
            "tracking": request.tracking, "chutes": chutes, "fallback": self._exception_bin(),
            "barcode": barcode, "late": late})
        _remember(self._replies, (request.tracking, request.seq), reply)
        return reply

    def _exception_bin(self) -> int:
        rules = self._agent.rules
        return rules.lanes[rules.exception_lane].bin

    def _send(self, data: bytes) -> bool:
        return self._agent.hub.send(self._device, data)
