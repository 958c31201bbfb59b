"""Fault 7: hostile traffic from central's side, on the real agent process while parcels flow.

Each finding of the security review, against a running agent with a real broker and a line on
ptys: deeply nested JSON (also retained, across restarts), a rule set with a bin the sorter
cannot address, refused rule sets with thousands of problems, a burst of large manifest
batches, retained, stale and replayed commands. Then a fuzz of all of them at once. After
each: the agent is the same process (or came back), the line kept sorting with its scan to
lane-command latency within bound, and the agent's memory stayed flat.
"""

from __future__ import annotations

import itertools
import json
import signal
import string
import time

import pytest
from fault_support import scaled, wrong_bins
from hostile_support import (
    CommandSender,
    ParcelFlow,
    dated_command,
    percentile,
    resident_mb,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from line_harness import AgentProcess, wait_for
from running_line import (
    DEFAULT_RULES_VERSION,
    GOOD_RULES,
    RunningLine,
    fault_line,
    rules_with_first_bin,
    run_cli,
)

from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

RATE = 60.0
# Scan to lane command while the bad traffic runs: what tells a stall from a busy machine.
# The line's benchmark p99 is ~2 ms on an idle machine; here the test's own threads (the line,
# central, the sender) share two cores with the agent and the broker: measured p99 13-58 ms
# alone, 290-670 ms with two more copies of this module running beside it (load 7.5). Before
# the fix a burst took it to 3.2 s (10.4 s in the review, with 10,000-row batches).
LATENCY_P99_BOUND_MS = 1000.0
# Resident memory the agent may gain over a run of hostile commands (a refused rule set's reply
# used to be kept whole: 80 of them took 245 MB).
MEMORY_GROWTH_BOUND_MB = 25.0
# The status snapshot is renewed next to the watchdog ping, every 0.5 s; systemd kills the
# service after 10 s without a ping. A gap over this bound means the loop was held up.
SNAPSHOT_GAP_BOUND_S = 2.0
FUZZ_EXAMPLES = scaled(25, 250)
# ZHUHAI on bin 120: a valid rule set, but generic-divert carries bins 1-99 only.
BIN_120_RULES = rules_with_first_bin("bin-120", 120)
EXIT_PROBLEMS = 2


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory):
    """One agent for the module, with a command sender that keeps its place in the parcel mix."""
    def command_sender(line: RunningLine) -> None:
        line.sim.sender, line.sim.position = line.client(CommandSender), 0

    with fault_line(tmp_path_factory.mktemp("hostile"), parcel_mix(3000, seed=71), rate=RATE,
                    rules_from_file=True, connect=command_sender) as running:
        yield running.sim, running.agent


# Parcels a flow sends at least, when a test only checks the line still sorts.
SOME_PARCELS = 30


def _flow(sim: LineSimulation) -> ParcelFlow:
    return ParcelFlow(sim, RATE, start=sim.position)


def _some_parcels(sim: LineSimulation, agent: AgentProcess) -> None:
    with _flow(sim) as flow:
        wait_for(lambda: flow.sent >= SOME_PARCELS, what="some parcels sent")
        _finish(sim, agent, flow)


def _finish(sim: LineSimulation, agent: AgentProcess, flow: ParcelFlow) -> list[float]:
    """Stop the parcels, check each was commanded and the agent still runs; the latencies."""
    flow.stop()
    sim.position = flow.position
    flow.wait_all_commanded()
    assert agent.process.poll() is None, agent.log_tail()
    latencies = flow.latencies_ms()
    assert latencies, "no parcel latency recorded"
    assert percentile(latencies, 0.99) < LATENCY_P99_BOUND_MS, (
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {latencies[-1]:.1f} ms")
    return latencies


def _reply(sim: LineSimulation, correlation: str) -> dict:
    return wait_for(lambda: sim.commands.replies.get(correlation.encode()),
                    what=f"the reply to {correlation}")


def _code(reply: dict) -> str:
    """The reply's error code, or "ok" for a command the agent acted on."""
    return reply["error"]["code"] if reply["error"] else "ok"


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock")


def _restart(sim: LineSimulation, agent: AgentProcess) -> None:
    assert agent.terminate() == 0, agent.log_tail()
    agent.start()
    assert sim.wait_for_agent(), agent.log_tail()


# -- finding 1: nested JSON --------------------------------------------------------------------

def test_deeply_nested_json_even_retained_never_stops_the_agent(line):
    sim, agent = line
    nested = b"[" * 50_000 + b"]" * 50_000  # 100 KB
    pid = agent.process.pid
    with _flow(sim) as flow:
        live = sim.sender.send("lanes.set", nested)
        assert _code(_reply(sim, live)) == "too_complex"
        kept = sim.sender.send("rules.apply", nested, retain=True)
        assert _code(_reply(sim, kept)) == "retained"
        assert agent.process.pid == pid and agent.process.poll() is None
        _finish(sim, agent, flow)
    # The broker delivers the retained one again at every connect: three restarts.
    for _ in range(3):
        _restart(sim, agent)
        wait_for(lambda: _status(sim)["mqtt"]["commands_subscribed"],
                 what="the agent subscribed to its commands")
        _some_parcels(sim, agent)
    sim.sender.clear_retained("rules.apply")


# -- finding 2: what the rules accept, the sorter must carry -----------------------------------

def test_rules_with_a_bin_the_sorter_cannot_carry_are_refused_everywhere(line, tmp_path):
    sim, agent = line
    with _flow(sim) as flow:
        reply = sim.commands.request("rules.apply", "bin-120", {"rules": BIN_120_RULES})
        assert _code(reply) == "rejected", reply
        assert any("bin 120" in problem and "generic-divert" in problem
                   for problem in reply["error"]["problems"]), reply
        assert not (sim.state_dir / "rules.applied.toml").exists()  # not the last known good
        # The technician's file, reloaded by SIGHUP: refused as well, the current rules stay.
        sim.rules_file.write_text(BIN_120_RULES)
        agent.process.send_signal(signal.SIGHUP)
        alarm = wait_for(lambda: next(iter(sim.central.alarms("rules_reload_refused")), None),
                         what="the rules_reload_refused alarm")
        assert any("bin 120" in problem for problem in alarm["details"]["problems"])
        sim.rules_file.write_text(GOOD_RULES)
        _finish(sim, agent, flow)
    assert _status(sim)["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    commanded = {c["parcel_id"]: c["bin"] for c in sim.results.commands[-flow.sent:]}
    events = wait_for(lambda: (lambda seen: seen if commanded.keys() <= seen.keys() else None)(
        sim.central.parcels()), what="the flow's events")
    assert wrong_bins({pid: events[pid] for pid in commanded}, commanded) == []
    # `rules check` gives the same answer as the agent, by default for the default sorter.
    rules_file = tmp_path / "bin-120.toml"
    rules_file.write_text(BIN_120_RULES)
    for extra in ([], ["--config", str(sim.config_path)], ["--sorter-profile", "generic-divert"]):
        result = run_cli("rules", "check", str(rules_file), *extra)
        assert result.returncode == EXIT_PROBLEMS, (extra, result.stdout, result.stderr)
        assert "bin 120" in result.stdout


# -- finding 3: small replies, flat memory -----------------------------------------------------

def _rules_with_many_problems(version: int) -> str:
    """A rule set of ~256 KB with a problem on every lane and every rule."""
    lanes = "".join(f"[lanes.L{i}]\nbin = 0\n" for i in range(99))
    rules = "".join(f'[[rules]]\nid = "rule-{i}"\nlane = "NOWHERE-{i}"\nreason = "r"\n'
                    f"when.weight_max_kg = {i}.5\n" for i in range(500))
    return f'version = "many-{version}"\n{lanes}{rules}[default]\nlane = "NOWHERE"\n'


def test_refused_rule_sets_get_small_replies_and_memory_stays_flat(line):
    sim, agent = line
    pid = agent.process.pid
    text = _rules_with_many_problems(0)
    with _flow(sim) as flow:
        first = sim.commands.request("rules.apply", "many-warmup", {"rules": text})
        before = resident_mb(pid)
        sizes = []
        for number in range(80):
            correlation = sim.sender.send("rules.apply", dated_command(
                f"many-{number}", {"rules": _rules_with_many_problems(number)}))
            reply = _reply(sim, correlation)
            assert _code(reply) == "rejected", reply
            assert reply["error"]["problems_total"] > 500
            sizes.append(len(json.dumps(reply)))
        after = resident_mb(pid)
        _finish(sim, agent, flow)
    assert first["error"]["problems_total"] > 500 and len(first["error"]["problems"]) == 20
    assert max(sizes) < 8_000, max(sizes)
    assert after - before < MEMORY_GROWTH_BOUND_MB, (before, after)
    log_lines = (sim.out_dir / "agent.log").read_text().splitlines()
    assert max(len(line) for line in log_lines) < 16_000


# -- finding 4: a burst of work, applied off the loop ------------------------------------------

def _manifest_batch(batch: int, rows: int = 5000) -> dict:
    return {"entries": [{"barcode": f"BU{batch:03d}{i:09d}", "country": "CN",
                         "postal_code": "200120", "declared_weight_kg": 1.5}
                        for i in range(rows)]}


def test_a_burst_of_manifest_batches_does_not_stall_the_line(line):
    sim, agent = line
    snapshots: list[float] = []
    batches = 40
    # Made before the parcels start: the line's simulators share this process with them.
    payloads = [dated_command(f"burst-{b}", _manifest_batch(b), lifetime_s=600)
                for b in range(batches)]
    with _flow(sim) as flow:
        correlations = [sim.sender.send("manifest.upsert", payload) for payload in payloads]
        # Meanwhile the loop keeps house: the status snapshot (renewed with the watchdog ping)
        # must stay fresh.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                c.encode() in sim.commands.replies for c in correlations):
            snapshots.append(_status(sim)["agent"]["uptime_s"])
            time.sleep(0.05)  # sampling the snapshot's age, not synchronising
        latencies = _finish(sim, agent, flow)
    replies = [_reply(sim, c) for c in correlations]
    applied = [r for r in replies if r["ok"]]
    # Taken, or refused as `busy` when the inbox's bytes were full: never a silent drop.
    assert applied and all(_code(r) in ("ok", "busy") for r in replies), replies
    assert sum(r["result"]["upserted"] for r in applied) == 5000 * len(applied)
    gaps = [b - a for a, b in itertools.pairwise(snapshots)]
    assert max(gaps, default=0) < SNAPSHOT_GAP_BOUND_S, max(gaps)
    assert latencies[-1] < 1000, f"max {latencies[-1]:.1f} ms"


# -- finding 5: fresh and once-only ------------------------------------------------------------

def test_retained_stale_and_replayed_commands_are_not_acted_on_even_after_restarts(line):
    sim, agent = line

    def zhuhai() -> str:
        return _status(sim)["lanes"]["ZHUHAI"]["state"]

    blocked = {"lane": "ZHUHAI", "state": "blocked"}
    kept = sim.sender.send("lanes.set", dated_command("kept-block", blocked), retain=True)
    assert _code(_reply(sim, kept)) == "retained"
    stale = sim.sender.send("lanes.set", dated_command("old-block", blocked, age_s=600))
    assert _code(_reply(sim, stale)) == "stale"
    future = sim.sender.send("lanes.set", dated_command("future-block", blocked, age_s=-600))
    assert _code(_reply(sim, future)) == "stale"
    undated = sim.sender.send("lanes.set", json.dumps({"id": "undated", "args": blocked}).encode())
    assert _code(_reply(sim, undated)) == "bad_request"
    assert zhuhai() == "open"
    # A live block, then a live open; the block's message delivered again after a restart
    # (a QoS 1 retry within its lifetime) gets its first reply and changes nothing.
    block = dated_command("block-1", blocked, lifetime_s=600)
    first = _reply(sim, sim.sender.send("lanes.set", block))
    assert first["ok"] and zhuhai() == "blocked"
    assert sim.commands.request("lanes.set", "open-1", {"lane": "ZHUHAI", "state": "open"})["ok"]
    _restart(sim, agent)
    wait_for(lambda: _status(sim)["mqtt"]["commands_subscribed"],
             what="the agent subscribed to its commands")
    assert zhuhai() == "open"  # the retained block, delivered at connect, was refused again
    again = _reply(sim, sim.sender.send("lanes.set", block))
    assert again == first and zhuhai() == "open"
    sim.sender.clear_retained("lanes.set")
    _some_parcels(sim, agent)


# -- the fuzz: everything at once, while parcels flow -------------------------------------------

NAMES = st.sampled_from(["rules.apply", "manifest.upsert", "manifest.remove", "lanes.set",
                         "holds.put", "holds.lift", "status.get", "ping", "nonsense"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
HARMLESS_ARGS = {  # valid commands that do not change where parcels go
    "status.get": st.just({}), "ping": st.just({}),
    "lanes.set": st.fixed_dictionaries({"lane": st.sampled_from(["ZHUHAI", "MARS"]),
                                        "state": st.just("open")}),
    "manifest.remove": st.fixed_dictionaries({"barcodes": st.lists(
        st.text(string.ascii_uppercase, min_size=3, max_size=12), min_size=1, max_size=5)}),
    "holds.lift": st.fixed_dictionaries({"hold_ids": st.lists(
        st.text(string.ascii_uppercase, min_size=1, max_size=12), min_size=1, max_size=5)}),
}


@st.composite
def hostile_commands(draw) -> tuple[str, bytes, bool]:
    """(command name, payload, retain flag)."""
    name = draw(NAMES)
    command_id = "fz-" + draw(st.text(string.ascii_letters + string.digits, min_size=1,
                                      max_size=16))
    kind = draw(st.sampled_from(["nested", "random", "oversized", "stale", "future", "valid",
                                 "wide", "bytes"]))
    # Oversized, but within what the broker forwards (the agent asks for packets of at most
    # max_command_bytes + 64 KiB): so the agent's own refusal is what is tested.
    if kind == "nested":
        depth = draw(st.integers(17, 60_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        payload = opener * depth + b"1" + closer * depth
    elif kind == "random":
        payload = json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "oversized":
        payload = dated_command(command_id, {"pad": "x" * draw(st.integers(530_000, 580_000))})
    elif kind == "wide":
        payload = dated_command(command_id, {"entries": [0] * draw(st.integers(50_001, 90_000))})
    elif kind == "bytes":
        payload = draw(st.binary(min_size=1, max_size=200))
    else:
        args = draw(HARMLESS_ARGS.get(name, st.just({})))
        age = {"stale": draw(st.floats(120, 1e6)), "future": -draw(st.floats(60, 1e6)),
               "valid": 0.0}[kind]
        payload = dated_command(command_id, args, age_s=age)
    return name, payload, draw(st.booleans()) and draw(st.booleans())  # retained 1 in 4


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(commands=st.lists(hostile_commands(), min_size=1, max_size=4))
def _fuzz_round(sim: LineSimulation, agent: AgentProcess, commands) -> None:
    correlations = [sim.sender.send(name, payload, retain=retain)
                    for name, payload, retain in commands]
    for correlation, (name, payload, retain) in zip(correlations, commands, strict=True):
        reply = _reply(sim, correlation)
        what = (name, payload[:80], retain, reply)
        if retain:
            assert _code(reply) in ("retained", "too_large"), what
        assert len(json.dumps(reply)) < 64_000, what
    for name in {name for name, _, retain in commands if retain}:
        sim.sender.clear_retained(name)
    assert agent.process.poll() is None, agent.log_tail()


def test_fuzzed_hostile_commands_while_parcels_flow(line):
    sim, agent = line
    pid = agent.process.pid
    with _flow(sim) as flow:
        sim.commands.request("ping", "fuzz-warmup")
        before = resident_mb(pid)
        _fuzz_round(sim, agent)
        after = resident_mb(pid)
        _finish(sim, agent, flow)
    assert agent.process.pid == pid
    assert after - before < MEMORY_GROWTH_BOUND_MB, (before, after)
    status = _status(sim)
    assert status["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    assert {lane["state"] for lane in status["lanes"].values()} == {"open"}
