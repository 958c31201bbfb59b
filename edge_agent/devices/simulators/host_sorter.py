"""A sorter that tracks parcels itself and asks the agent for destinations (sorter-host).

`induct(tracking, barcodes, ...)` is a parcel entering the sorter: the simulator sends a
destination request, and when the agent's reply comes, reports the parcel's result after
`result_delay_s`, re-sending the result unchanged every `resend_after_s` (up to `max_resends`)
until the agent acknowledges it, as the public host interfaces specify. Each parcel's result is
the next one queued with `queue_outcomes`, else drawn at `outcome_rates` (seeded), else
`outcome`. Faults on demand:
- `resend_requests`: every request is sent twice, unchanged (same sequence);
- `resend_unanswered_s`: a request with no reply after this long is sent again unchanged (same
  sequence), up to `max_resends` times, as a sorter does whose answer was lost with its link;
- `lose_replies`: the next N replies are lost with the link (it drops as each arrives, unread),
  leaving requests outstanding across a new link;
- "recirculated": an intermediate report, then the same tracking number asks again with pass+1
  (up to the agent's answer sending it to the exception chute, which ends it as sorted there);
- "chute_full": the parcel goes to the reply's fallback; "tracking_lost", "too_late": no chute;
- `deadline_ms`: the deadline each request names (0 < it < the agent's time: answered late);
- `hold_requests()` ... `release_requests()`: the requests of the parcels inducted between
  them go out in one write (a burst, as several parcels reach the scan tunnel together or TCP
  puts several messages in one segment): the agent reads them at once and answers them one
  after the other, so with a short deadline the last ones are answered late;
- `unplug()` / `replug()`: the link drops (inherited from PtyPeer);
- `heartbeat_period_s`: heartbeats, each of which the agent must acknowledge.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.devices.length_framing import LengthHeaderFramer
from edge_agent.devices.profiles import load_profile
from edge_agent.devices.simulators.pty_peer import PtyPeer
from edge_agent.devices.sorter_host import ACK, HEARTBEAT, REPLY, REQUEST, RESULT, encode_message

PROFILE = "sorter-host-json"
# The sorter's word for each outcome the simulator can produce.
RESULT_OUTCOMES = ("sorted", "too_late", "chute_full", "chute_disabled", "chute_jammed",
                   "recirculated", "tracking_lost")


@dataclass
class Inducted:
    tracking: str
    barcodes: list[str]
    weight_kg: float | None
    dims: tuple[float, float, float] | None
    passes: int = 1
    replies: list[dict] = field(default_factory=list)  # every reply, re-sent ones too
    results: list[dict] = field(default_factory=list)  # every result body sent


class HostSorterSimulator(PtyPeer):
    tick_period_s = 0.02

    def __init__(self, link: str | Path | None = None, *, name: str = "sorter") -> None:
        super().__init__(link, name=name)
        profile = load_profile(PROFILE)
        self._start = profile.framing.start  # type: ignore[union-attr]
        self._framer = LengthHeaderFramer(profile.framing)  # type: ignore[arg-type]
        self.outcome = "sorted"
        self.outcome_rates: dict[str, float] = {}
        self.result_delay_s = 0.0
        self.resend_after_s, self.max_resends = 0.3, 3
        self.resend_requests = False
        self.resend_unanswered_s: float | None = None
        self.lose_replies = 0
        self.deadline_ms: int | None = None
        self.heartbeat_period_s: float | None = None
        self.parcels: dict[str, Inducted] = {}
        self.acks_received: list[int] = []
        # seq -> when its request's last byte was written (first copy), for reply latency.
        self.requests_sent_ns: dict[int, int] = {}
        self.unknown: list[bytes] = []
        self._queued: deque[str] = deque()
        self._held: list[tuple[int, bytes]] | None = None  # requests kept for one burst
        self._rng = random.Random(0)
        self._seq = itertools.count(1)
        self._unacked: dict[int, tuple[bytes, int, float]] = {}  # seq -> (frame, sends, due)
        self._unanswered: dict[int, tuple[bytes, int, float]] = {}  # requests, likewise
        self._heartbeats: dict[int, float] = {}
        self._next_heartbeat = 0.0
        self._changed = threading.Condition()

    # -- the line's side ---------------------------------------------------------------------

    def induct(self, tracking: str, barcodes: list[str], weight_kg: float | None = None,
               dims: tuple[float, float, float] | None = None, passes: int = 1) -> int:
        """A parcel enters the sorter (`passes` > 1: one found again on a later round, under a
        new tracking number): its destination request. Returns its seq."""
        with self._changed:
            self.parcels[tracking] = Inducted(tracking, list(barcodes), weight_kg, dims, passes)
        return self._request(tracking)

    def hold_requests(self) -> None:
        """Keep the next requests back, to send them in one write at release_requests()."""
        with self._changed:
            self._held = []

    def release_requests(self) -> None:
        with self._changed:
            held, self._held = self._held or [], None
        self.send_glued([frame for _, frame in held])
        sent_ns = time.monotonic_ns()
        for seq, _ in held:
            self.requests_sent_ns.setdefault(seq, sent_ns)

    def queue_outcomes(self, *outcomes: str) -> None:
        for outcome in outcomes:
            if outcome not in RESULT_OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r} (one of {RESULT_OUTCOMES})")
        self._queued.extend(outcomes)

    def use_outcome_rates(self, rates: dict[str, float], seed: int = 0) -> None:
        if set(rates) - set(RESULT_OUTCOMES) or sum(rates.values()) > 1:
            raise ValueError(f"outcome rates {rates!r}: known outcomes, shares summing to <= 1")
        self.outcome_rates, self._rng = dict(rates), random.Random(seed)

    def wait_until(self, condition, timeout_s: float) -> bool:
        """Block until `condition()` holds (checked on every reply, ack and result)."""
        with self._changed:
            return self._changed.wait_for(condition, timeout_s)

    def finished(self) -> list[str]:
        """Trackings whose final result the agent acknowledged."""
        with self._changed:
            return [t for t, p in self.parcels.items()
                    if p.results and p.results[-1].get("final") and p.results[-1].get("acked")]

    # -- the agent's side --------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        for frame in self._framer.feed(data, time.monotonic_ns()):
            kind, seq = frame.raw[3], int.from_bytes(frame.raw[4:8], "big")
            try:
                body = json.loads(frame.raw[12:] or b"{}")
            except ValueError:
                body = None
            if kind == REPLY and isinstance(body, dict):
                self._on_reply(seq, body)
            elif kind == ACK:
                self._on_ack(seq)
            else:
                self.unknown.append(frame.raw)

    def _on_reply(self, seq: int, body: dict) -> None:
        if self.lose_replies > 0:
            self.lose_replies -= 1
            self.drop_link()  # the reply went down with the link: never read
            return
        with self._changed:
            self._unanswered.pop(seq, None)
            parcel = self.parcels.get(str(body.get("tracking")))
            if parcel is None:
                self.unknown.append(json.dumps(body).encode())
                return
            first = not any(r["seq"] == seq for r in parcel.replies)
            parcel.replies.append({**body, "seq": seq, "received_ns": time.monotonic_ns()})
            self._changed.notify_all()
        if first:  # a reply to a re-sent request changes nothing on the sorter
            self._result_later(parcel, body)

    def _on_ack(self, seq: int) -> None:
        with self._changed:
            self.acks_received.append(seq)
            self._heartbeats.pop(seq, None)
            sent = self._unacked.pop(seq, None)
            if sent is not None:
                for parcel in self.parcels.values():
                    for result in parcel.results:
                        if result.get("seq") == seq:
                            result["acked"] = True
            self._changed.notify_all()

    # -- internals ---------------------------------------------------------------------------

    def _request(self, tracking: str) -> int:
        parcel = self.parcels[tracking]
        body: dict = {"tracking": tracking, "barcodes": parcel.barcodes,
                      "weight_kg": parcel.weight_kg, "pass": parcel.passes}
        if parcel.dims is not None:
            body.update(zip(("length_mm", "width_mm", "height_mm"), parcel.dims, strict=True))
        if self.deadline_ms is not None:
            body["deadline_ms"] = self.deadline_ms
        seq = next(self._seq)
        frame = encode_message(self._start, 1, REQUEST, seq, body)
        copies = 2 if self.resend_requests else 1
        with self._changed:
            if self.resend_unanswered_s is not None:
                self._unanswered[seq] = (frame, 1, time.monotonic() + self.resend_unanswered_s)
            if self._held is not None:
                self._held.extend([(seq, frame)] * copies)
                return seq
        for copy in range(copies):
            self.send_frame(frame)
            if copy == 0:
                self.requests_sent_ns[seq] = time.monotonic_ns()
        return seq

    def reply_latencies_ns(self) -> list[int]:
        """Request written -> its first reply read, per answered request."""
        with self._changed:
            return [reply["received_ns"] - self.requests_sent_ns[reply["seq"]]
                    for parcel in self.parcels.values() for reply in parcel.replies
                    if reply["seq"] in self.requests_sent_ns and reply is next(
                        r for r in parcel.replies if r["seq"] == reply["seq"])]

    def _next_outcome(self) -> str:
        if self._queued:
            return self._queued.popleft()
        draw = self._rng.random()
        for outcome, share in self.outcome_rates.items():
            if draw < share:
                return outcome
            draw -= share
        return self.outcome

    def _result_later(self, parcel: Inducted, reply: dict) -> None:
        chutes = reply.get("chutes") or [reply.get("fallback")]
        outcome = self._next_outcome()
        if outcome == "recirculated" and chutes == [reply.get("fallback")] and parcel.passes > 1:
            outcome = "sorted"  # sent to the exception chute after its rounds: it drops there
        chute = {"sorted": chutes[0], "chute_full": reply.get("fallback"),
                 "chute_disabled": reply.get("fallback"),
                 "chute_jammed": reply.get("fallback")}.get(outcome)
        body = {"tracking": parcel.tracking, "status": outcome, "chute": chute,
                "pass": parcel.passes, "final": outcome != "recirculated",
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"}
        threading.Timer(self.result_delay_s, self._send_result, (parcel, body)).start()

    def _send_result(self, parcel: Inducted, body: dict) -> None:
        seq = next(self._seq)
        frame = encode_message(self._start, 1, RESULT, seq, body)
        with self._changed:
            parcel.results.append({**body, "seq": seq})
            self._unacked[seq] = (frame, 1, time.monotonic() + self.resend_after_s)
        self.send_frame(frame)
        if not body["final"]:  # round again: the same tracking number asks on its next pass
            parcel.passes += 1
            self._request(parcel.tracking)

    def on_tick(self, now: float) -> None:
        with self._changed:
            resend = (_due_again(self._unacked, now, self.resend_after_s, self.max_resends)
                      + _due_again(self._unanswered, now, self.resend_unanswered_s or 0.0,
                                   self.max_resends))
        for frame in resend:
            self.send_frame(frame)
        if self.heartbeat_period_s is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + self.heartbeat_period_s
            seq = next(self._seq)
            with self._changed:
                self._heartbeats[seq] = now
            self.send_frame(encode_message(self._start, 1, HEARTBEAT, seq))

    def heartbeats_unanswered(self) -> int:
        with self._changed:
            return len(self._heartbeats)


def _due_again(unanswered: dict[int, tuple[bytes, int, float]], now: float, period_s: float,
               max_resends: int) -> list[bytes]:
    """The frames of `unanswered` (seq -> frame, sends, due) to send again now; those sent
    `max_resends` times already are given up, as the public interfaces specify (for a request,
    the sorter's own fallback chute then takes the parcel)."""
    due_now = []
    for seq, (frame, sends, due) in list(unanswered.items()):
        if now >= due:
            if sends > max_resends:
                del unanswered[seq]
            else:
                unanswered[seq] = (frame, sends + 1, now + period_s)
                due_now.append(frame)
    return due_now
