"""Pairing with a polled scale: a reply is used only when it provably answers its parcel's request.

A scale that is asked for a stable weight (MT-SICS `S`) says nothing about *which* request a
reply answers. So at most one request is outstanding at a time, and a reply counts only when it
arrives while that request is outstanding and within `poll_timeout_ms` of it being sent. Every
reply then belongs to exactly one request, and a lost reply cannot move later replies onto the
wrong parcels:

- a request with no reply in time: its parcel goes on without a weight (`no_reply`), and the
  scale is resynchronised: for `resync_ms` no request is sent and every reply is discarded,
  since the lost reply may still be on its way and would otherwise answer the next request;
- a garbled frame while a request is outstanding is that request's answer (`reply_corrupt`),
  followed by the same resynchronisation (the real answer may still follow the garbage);
- a reply nobody is waiting for is discarded, counted, and restarts the resynchronisation;
- a scan that arrives while another parcel's request is outstanding waits its turn; one that
  cannot be asked for within `poll_timeout_ms` of its scan goes on without a weight
  (`scale_busy`): by then it has left the scale.

Replies "no stable weight" (MT-SICS `S I`) and overload answer their request too.

A scale answers `S` with what is on its platter *when it answers*. If the next parcel was
scanned (and so reached the platter) before the reply came, the reply may be that parcel's;
if the reply came right after this parcel's own scan, the platter may still have held the one
before. Since a parcel reaches the platter and the scanner only about together (and bytes of
two ports can arrive out of order by a little), a reply is the parcel's only when it came at
least `poll_reorder_ms` after its scan and that much before the next scan; otherwise it is
`ambiguous`. So a parcel is handed over `poll_reorder_ms` after its reply, unless the next
scan settles it sooner.
"""

from __future__ import annotations

from collections import Counter

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Weight, WeightStatus
from edge_agent.sorting.pairing_parcels import Waiting, WeightMatch
from edge_agent.units import NS_PER_MS


class PollPairer:
    def __init__(self, config: PairingConfig, counts: Counter[str]):
        self._timeout_ns = config.poll_timeout_ms * NS_PER_MS
        self._resync_ns = (config.resync_ms if config.resync_ms is not None
                           else config.poll_timeout_ms // 2) * NS_PER_MS
        self._min_weight_kg = config.min_weight_kg
        self._reorder_ns = int(config.poll_reorder_ms * NS_PER_MS)
        self._counts = counts
        self._outstanding: Waiting | None = None
        self._quiet_until_ns = 0  # resynchronising until then
        self._offline = False  # the last request could not be written

    # -- requests --------------------------------------------------------------------------

    def next_request(self, queue: list[Waiting], now_ns: int) -> Waiting | None:
        """The parcel whose request may go to the scale now (the caller sends it), or None."""
        if self._outstanding is not None or now_ns < self._quiet_until_ns:
            return None
        for waiting in queue:
            if waiting.match is None and waiting.requested_ns is None:
                if now_ns - waiting.scan.received_ns > self._timeout_ns:
                    continue  # too late to ask: it has left the scale; due_ns settles it
                waiting.requested_ns = now_ns
                self._outstanding = waiting
                self._offline = False
                return waiting
        return None

    def request_failed(self, now_ns: int) -> None:
        """The request could not be written (scale disconnected): nothing will answer it."""
        if self._outstanding is not None:
            self._outstanding.match = WeightMatch.without("scale_offline")
            self._outstanding = None
        self._offline = True
        self._resync(now_ns)

    def abandon(self, now_ns: int) -> None:
        """The scale's link was lost: the outstanding request's reply was lost with it."""
        if self._outstanding is not None:
            self.request_failed(now_ns)

    # -- replies ---------------------------------------------------------------------------

    def on_weight(self, weight: Weight) -> None:
        if weight.status == WeightStatus.OK and not weight.stable:
            return  # a reading in motion (a streaming frame, an SI reply): not an answer
        outstanding = self._outstanding
        stamp = weight.received_ns
        if (outstanding is None or outstanding.requested_ns is None
                or not outstanding.requested_ns <= stamp <= outstanding.requested_ns
                + self._timeout_ns):
            self._counts["replies_discarded"] += 1
            self._resync(stamp)
            return
        self._outstanding = None
        outstanding.reply_ns = stamp
        offset_ms = (stamp - outstanding.scan.received_ns) / NS_PER_MS
        if weight.status == WeightStatus.OVERLOAD:
            outstanding.match = WeightMatch(None, "overload", offset_ms)
        elif (weight.status == WeightStatus.OK and weight.value_kg is not None
              and weight.value_kg >= self._min_weight_kg):
            outstanding.match = WeightMatch(weight.value_kg, "paired", offset_ms)
        else:  # `S I` (no stability before the scale's own timeout), an empty platter, an error
            outstanding.match = WeightMatch(None, "unsettled", offset_ms)

    def on_garbled(self, received_ns: int) -> None:
        """A frame from the scale that could not be decoded."""
        outstanding = self._outstanding
        if outstanding is not None and outstanding.requested_ns is not None \
                and received_ns >= outstanding.requested_ns:
            outstanding.match = WeightMatch.without("reply_corrupt")
            self._outstanding = None
        self._resync(received_ns)

    # -- time ------------------------------------------------------------------------------

    def due_ns(self, waiting: Waiting) -> int:
        if waiting.match is not None:
            if waiting.reply_ns is None:  # settled without a reply: nothing more can change it
                return waiting.scan.received_ns
            return waiting.reply_ns + self._reorder_ns
        if waiting.requested_ns is not None:
            return waiting.requested_ns + self._timeout_ns
        return waiting.scan.received_ns + self._timeout_ns

    def next_request_ns(self, queue: list[Waiting]) -> int | None:
        """When a request may next be sent, if a parcel is waiting to be asked for."""
        if self._outstanding is not None:
            return None
        if any(w.match is None and w.requested_ns is None for w in queue):
            return self._quiet_until_ns
        return None

    def match(self, waiting: Waiting, following: Waiting | None, now_ns: int) -> WeightMatch:
        """The answer, or why there is none: called once `due_ns` has passed, or when the next
        parcel (`following`) was scanned."""
        if waiting.match is not None:
            if waiting.match.value_kg is not None and not self._platter_held_only(
                    waiting, following):
                return WeightMatch(None, "ambiguous", waiting.match.offset_ms)
            return waiting.match
        if waiting is self._outstanding:
            self._outstanding = None
            self._counts["replies_missing"] += 1
            self._resync(now_ns)
            return WeightMatch.without("no_reply")
        return WeightMatch.without("scale_offline" if self._offline else "scale_busy")

    def _platter_held_only(self, waiting: Waiting, following: Waiting | None) -> bool:
        """Whether the reply surely came while the platter held this parcel: at least the
        reorder margin after its scan (it had arrived) and before the next scan (which had
        not)."""
        reply_ns = waiting.reply_ns
        if reply_ns is None or reply_ns < waiting.scan.received_ns + self._reorder_ns:
            return False
        return following is None or (following.scan.received_ns - following.stamp_error_ns
                                     > reply_ns + self._reorder_ns)

    def _resync(self, from_ns: int) -> None:
        self._counts["resyncs"] += 1
        self._quiet_until_ns = max(self._quiet_until_ns, from_ns + self._resync_ns)
