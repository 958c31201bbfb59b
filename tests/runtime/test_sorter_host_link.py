"""The sorter-host link lost and kept, in process, over a pty and over loopback TCP (the agent
as server, the sorter connecting, as the public host specs have it).

A request whose reply went down with the link is re-sent unchanged by the sorter on the new
link: it gets the very same reply, never a second decision, and the parcel's result still
becomes its outcome. Over TCP the sorter's heartbeats (each acknowledged) keep a quiet link up
past the idle timeout; a sorter silent for longer is dropped and linked again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.device_links import Link
from test_agent_loop import outbox_rows, turn_until
from test_sorter_driven import ZHUHAI_BIN, Line, replies

from edge_agent.devices.profiles import load_profile
from edge_agent.devices.tcp_endpoint import TcpEndpoint
from edge_agent.devices.tcp_port import TcpPort
from edge_agent.units import NS_PER_S

IDLE_TIMEOUT_S = 0.5
HEARTBEAT_PERIOD_S = 0.1


@pytest.mark.parametrize("link", ["pty", "tcp-server"])
def test_a_reply_lost_with_the_link_is_answered_again_never_decided_again(
    tmp_path: Path, link: Link
) -> None:
    line = Line(tmp_path, link)
    try:
        agent = line.start_agent()
        port = agent.hub.ports["sorter"]
        line.sorter.resend_unanswered_s = 0.3  # as the public specs: 300 ms, up to 3 times
        line.sorter.lose_replies = 1  # the link drops as the first reply arrives
        line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
        [reply] = turn_until(agent, lambda: replies(line, "T1"))
        assert reply["chutes"] == [ZHUHAI_BIN] and reply["late"] is False
        assert port.counters["reconnects"] >= 1  # it did come over a new link
        totals = agent.counters.totals
        # Every copy after the first (re-sent on the new link) answered from the first's reply.
        assert totals["requests_resent"] >= 1
        assert totals["destination_requests"] == 1 + totals["requests_resent"]
        assert len(outbox_rows(agent, "parcel")) == 1  # one decision for both copies
        [outcome] = turn_until(agent, lambda: outbox_rows(agent, "outcome"))
        assert (outcome["outcome"], outcome["actual_bin"]) == ("sorted", ZHUHAI_BIN)
    finally:
        line.close()


def test_heartbeats_keep_a_quiet_tcp_link_and_silence_drops_it(tmp_path: Path) -> None:
    line = Line(tmp_path, "tcp-server", f"\nidle_timeout_s = {IDLE_TIMEOUT_S}")
    try:
        agent = line.start_agent()
        port = agent.hub.ports["sorter"]
        line.sorter.heartbeat_period_s = HEARTBEAT_PERIOD_S
        # Three idle timeouts' worth of heartbeats and nothing else: the link stays.
        wanted = round(3 * IDLE_TIMEOUT_S / HEARTBEAT_PERIOD_S)
        turn_until(agent, lambda: agent.counters.totals["heartbeats"] >= wanted)
        assert (port.counters["idle_timeouts"], port.counters["reconnects"]) == (0, 0)
        turn_until(agent, lambda: line.sorter.heartbeats_unanswered() <= 1)
        line.sorter.heartbeat_period_s = None  # the sorter goes quiet, its link half-dead
        turn_until(agent, lambda: port.counters["idle_timeouts"] == 1)
        line.sorter.heartbeat_period_s = HEARTBEAT_PERIOD_S  # it talks again, and links again
        heard = agent.counters.totals["heartbeats"]
        turn_until(agent, lambda: port.connected and agent.counters.totals["heartbeats"] > heard)
        line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
        [reply] = turn_until(agent, lambda: replies(line, "T1"))
        assert reply["chutes"] == [ZHUHAI_BIN]
    finally:
        line.close()


def test_a_sorter_host_link_silent_for_30_s_is_dropped_by_default() -> None:
    """The public host specs' figure: the sorter's heartbeat every 5 s, the link dropped after
    30 s of silence. No heartbeat of the agent's own: it acknowledges the sorter's."""
    port = TcpPort("sorter", TcpEndpoint("127.0.0.1", 9100, "server"),
                   load_profile("sorter-host-json"))
    assert (port.idle_timeout_ns, port.heartbeat_period_ns) == (30 * NS_PER_S, None)
