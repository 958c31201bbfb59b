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
import os
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
    stall_episodes,
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

RATE = 120.0
# Scan to lane command while the bad traffic runs, against the same line without it in the
# same run: each hostile flow of at least P99_MIN_PARCELS parcels may have a p99 of at most
# LATENCY_P99_RATIO times the busiest of the quiet p99s (the module's baseline of
# BASELINE_PARCELS, and flows of CONTROL_PARCELS just before and just after it), plus
# LATENCY_P99_ALLOWANCE_MS. The allowance and the neighbouring quiet flows are for the 2-core
# test machine, where the broker and the test's own simulated line share the cores with the
# agent, and other work on the machine moves every flow's p99 by 10-25 ms from one minute to
# the next. Measured (docs/RELIABILITY.md, "Where the loop waited"): with commands prepared on
# a thread of the agent (`EDGE_AGENT_HOSTILE_WORKER=thread`), p99 43-57 ms under refused rule
# sets against quiet p99s of 6-14 ms, and this bound failed; prepared in the worker process,
# 7-25 ms. Short flows (after the restarts) are checked for every lane command, not latency.
LATENCY_P99_RATIO = 2.0
LATENCY_P99_ALLOWANCE_MS = 10.0
# A machine's hiccup of up to ~80 ms at 120 parcels/s: the parcels it delays, at most.
HICCUP_MAX_PARCELS = 10
BASELINE_PARCELS = 600
CONTROL_PARCELS = 300
P99_MIN_PARCELS = 100
# Where the agent prepares commands (mqtt.command_worker): `EDGE_AGENT_HOSTILE_WORKER=thread`
# runs the module against the old way, to see the bound fail.
WORKER = os.environ.get("EDGE_AGENT_HOSTILE_WORKER", "process")
# Resident memory the agent may gain over a run of hostile commands (a refused rule set's reply
# used to be kept whole: 80 of them took 245 MB).
MEMORY_GROWTH_BOUND_MB = 25.0  # the agent and its command worker together
# The status snapshot is renewed next to the watchdog ping, every 0.5 s; systemd kills the
# service after 10 s without a ping. A gap over this bound means the loop was held up.
SNAPSHOT_GAP_BOUND_S = 2.0
FUZZ_EXAMPLES = scaled(25, 250)
# ZHUHAI on bin 120: a valid rule set, but generic-divert carries bins 1-99 only.
BIN_120_RULES = rules_with_first_bin("bin-120", 120)
EXIT_PROBLEMS = 2


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory):
    """One agent for the module, with a command sender that keeps its place in the parcel mix;
    the scan -> lane command baseline measured once it has settled."""
    def command_sender(line: RunningLine) -> None:
        line.sim.sender, line.sim.position = line.client(CommandSender), 0

    def worker(sim: LineSimulation) -> None:
        if WORKER != "process":  # to compare: the bound is meant to fail with the thread
            sim.config_path.write_text(sim.config_path.read_text().replace(
                "[mqtt]\n", f'[mqtt]\ncommand_worker = "{WORKER}"\n'))

    with fault_line(tmp_path_factory.mktemp("hostile"), parcel_mix(4000, seed=71), rate=RATE,
                    rules_from_file=True, configure=worker, connect=command_sender) as running:
        sim, agent = running.sim, running.agent
        sim.baseline_p99_ms = sim.control_p99_ms = None
        # Measured once the agent has settled: its command worker started (a new interpreter
        # importing the agent, a second after start) and its first parcels decided.
        wait_for(lambda: _status(sim)["commands"]["state"] == "running", timeout_s=60.0,
                 what="the command worker running")
        _quiet_p99(sim, agent, SOME_PARCELS, "warm-up")
        sim.baseline_p99_ms = _quiet_p99(sim, agent, BASELINE_PARCELS, "baseline")
        yield sim, agent


# Parcels a flow sends at least, when a test only checks the line still sorts.
SOME_PARCELS = 30


def _flow(sim: LineSimulation) -> ParcelFlow:
    return ParcelFlow(sim, RATE, start=sim.position)


def _some_parcels(sim: LineSimulation, agent: AgentProcess) -> None:
    with _flow(sim) as flow:
        wait_for(lambda: flow.sent >= SOME_PARCELS, what="some parcels sent")
        _finish(sim, agent, flow, "some parcels")


def _quiet_p99(sim: LineSimulation, agent: AgentProcess, parcels: int, what: str) -> float:
    """The p99 of a flow of `parcels` without any command traffic."""
    with _flow(sim) as flow:
        wait_for(lambda: flow.sent >= parcels, timeout_s=60.0, what=f"{what}: parcels sent")
        return percentile(_finish(sim, agent, flow, what, bounded=False), 0.99)


def _control(sim: LineSimulation, agent: AgentProcess) -> None:
    """A quiet flow just before a hostile one (see _finish)."""
    sim.control_p99_ms = _quiet_p99(sim, agent, CONTROL_PARCELS, "control before")


def _finish(sim: LineSimulation, agent: AgentProcess, flow: ParcelFlow, what: str, *,
            bounded: bool = True) -> list[float]:
    """Stop the parcels, check each was commanded and the agent still runs, and (`bounded`)
    that scan to lane command kept within the bound; the latencies (ordered).

    The bound's base is the busiest of the module's baseline and the quiet flows just before
    (`_control`) and just after this one: the machine's other work changes from minute to
    minute, and what the agent is measured against is the same minute without the traffic."""
    flow.stop()
    sim.position = flow.position
    flow.wait_all_commanded()
    assert agent.process.poll() is None, agent.log_tail()
    latencies = flow.latencies_ms()
    assert latencies, "no parcel latency recorded"
    p99 = percentile(latencies, 0.99)
    print(f"\n[hostile] {what}: {len(latencies)} parcels, p50 {percentile(latencies, 0.5):.1f} "
          f"ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")
    if not bounded or len(latencies) < P99_MIN_PARCELS or sim.baseline_p99_ms is None:
        return latencies
    quiet = [sim.baseline_p99_ms, _quiet_p99(sim, agent, CONTROL_PARCELS, "control after")]
    if sim.control_p99_ms is not None:
        quiet.append(sim.control_p99_ms)
    sim.control_p99_ms = None
    bound = max(quiet) * LATENCY_P99_RATIO + LATENCY_P99_ALLOWANCE_MS
    print(f"[hostile] {what}: bound {bound:.1f} ms from the quiet p99s {quiet}")
    if p99 > bound:
        # One stall of the machine (a shared VM's hiccup) delays the parcels queued behind it
        # and can lift a flow's p99 alone; stalls that commands cause come back with each of
        # them. So one short episode over the bound is the machine's, more are the agent's.
        episodes = stall_episodes(flow.latencies_in_order_ms(), bound)
        print(f"[hostile] {what}: parcels over the bound, by episode: {episodes}")
        assert len(episodes) == 1 and episodes[0] <= HICCUP_MAX_PARCELS, (
            f"{what}: p99 {p99:.1f} ms over the bound {bound:.1f} ms (quiet p99s {quiet}); "
            f"max {latencies[-1]:.1f} ms; parcels over it by episode {episodes}")
    return latencies


def _resident_mb(sim: LineSimulation, pid: int) -> float:
    """The agent's resident memory with its command worker's (a process of its own)."""
    worker = _status(sim)["commands"].get("pid")
    return resident_mb(pid) + (resident_mb(worker) if worker else 0.0)


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
        _finish(sim, agent, flow, "nested JSON")
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
        _finish(sim, agent, flow, "bin-120 rules")
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
    # Made before the parcels start: the line's simulators share this process with them.
    payloads = [dated_command(f"many-{number}", {"rules": _rules_with_many_problems(number)},
                              lifetime_s=600) for number in range(80)]
    _control(sim, agent)
    with _flow(sim) as flow:
        first = sim.commands.request("rules.apply", "many-warmup", {"rules": text})
        before = _resident_mb(sim, pid)
        sizes = []
        for payload in payloads:
            reply = _reply(sim, sim.sender.send("rules.apply", payload))
            assert _code(reply) == "rejected", reply
            assert reply["error"]["problems_total"] > 500
            sizes.append(len(json.dumps(reply)))
        after = _resident_mb(sim, pid)
        _finish(sim, agent, flow, "refused rule sets")
    assert first["error"]["problems_total"] > 500 and len(first["error"]["problems"]) == 20
    assert max(sizes) < 8_000, max(sizes)
    print(f"[hostile] resident, agent and worker: {before:.1f} -> {after:.1f} MB")
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
    _control(sim, agent)
    with _flow(sim) as flow:
        correlations = [sim.sender.send("manifest.upsert", payload) for payload in payloads]
        # Meanwhile the loop keeps house: the status snapshot (renewed with the watchdog ping)
        # must stay fresh.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                c.encode() in sim.commands.replies for c in correlations):
            snapshots.append(_status(sim)["agent"]["uptime_s"])
            time.sleep(0.05)  # sampling the snapshot's age, not synchronising
        latencies = _finish(sim, agent, flow, "manifest burst")
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
    assert first["ok"]
    # The status snapshot is renewed at the loop's next housekeeping turn after the step.
    wait_for(lambda: zhuhai() == "blocked", what="ZHUHAI blocked in the status")
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


def _fuzz_examples() -> list[list[tuple[str, bytes, bool]]]:
    """The fuzz's rounds, drawn before the parcels start: drawing them (json.dumps of 90,000
    values, 580 KB strings) holds this process's interpreter, which the line's simulators
    share, and would show as latency the agent did not cause."""
    rounds: list[list[tuple[str, bytes, bool]]] = []

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(commands=st.lists(hostile_commands(), min_size=1, max_size=4))
    def draw(commands) -> None:
        rounds.append(commands)

    draw()
    return rounds


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
    rounds = _fuzz_examples()
    _control(sim, agent)
    with _flow(sim) as flow:
        sim.commands.request("ping", "fuzz-warmup")
        before = _resident_mb(sim, pid)
        for commands in rounds:
            _fuzz_round(sim, agent, commands)
        after = _resident_mb(sim, pid)
        _finish(sim, agent, flow, "fuzz")
    assert agent.process.pid == pid
    print(f"[hostile] resident, agent and worker: {before:.1f} -> {after:.1f} MB")
    assert after - before < MEMORY_GROWTH_BOUND_MB, (before, after)
    status = _status(sim)
    assert status["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    assert {lane["state"] for lane in status["lanes"].values()} == {"open"}
