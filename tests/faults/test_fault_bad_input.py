"""Fault 6: bad input from outside, on the real agent process through a real broker.

Fuzzed commands (not JSON, random JSON, wrong types, over the size limit, unknown names), a
replayed command id, a broken rule set pushed by `rules.apply`, a corrupted rules file reloaded
by SIGHUP, a corrupted config file, a truncated manifest import. Each is refused with an error
that names the problem, the last good state stays in force, and the agent keeps deciding.
"""

from __future__ import annotations

import json
import signal
import string

import paho.mqtt.client as mqtt
import pytest
from fault_support import scaled, wrong_bins
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from line_harness import AgentProcess, wait_for
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from running_line import (
    CLI_TIMEOUT_S,
    DEFAULT_RULES_VERSION,
    GOOD_RULES,
    RunningLine,
    fault_line,
    rules_with_first_bin,
    run_cli,
)

from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.commands import HANDLERS

BATCH = 30
RATE = 50.0
# Small enough that a fuzzed payload can pass it cheaply; the default is 1 MiB.
MAX_COMMAND_BYTES = 16384  # the default rules with their comments fit (~9 KB as JSON)
FUZZ_EXAMPLES = scaled(40, 400)
# A rule set that parses but does not validate: a lane's bin must be at least 1.
BROKEN_RULES = rules_with_first_bin("broken-2", 0)
EXIT_CONFIG_ERROR = 2


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory):
    """One agent for the module: the fuzz runs against a process that has been running."""
    def small_commands(sim: LineSimulation) -> None:
        sim.config_path.write_text(sim.config_path.read_text()
                                   + f"max_command_bytes = {MAX_COMMAND_BYTES}\n")

    def raw_sender(line: RunningLine) -> None:
        line.sim.raw, line.sim.next_batch = line.client(RawSender), 0

    with fault_line(tmp_path_factory.mktemp("bad_input"), parcel_mix(400, seed=61), rate=RATE,
                    rules_from_file=True, configure=small_commands, connect=raw_sender) as running:
        yield running.sim, running.agent


class RawSender:
    """Publishes any bytes as a command, with a response topic and correlation data, so the
    reply lands in CentralClient.replies under that correlation."""

    def __init__(self, host: str, port: int, prefix: str):
        self.prefix = prefix
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="faults-fuzzer",
                                   protocol=mqtt.MQTTv5)
        self._client.connect(host, port)
        self._client.loop_start()
        wait_for(self._client.is_connected, what="fuzzer connected")

    def send(self, name: str, payload: bytes, correlation: str) -> None:
        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"{self.prefix}reply/fuzz"
        properties.CorrelationData = correlation.encode()
        info = self._client.publish(f"{self.prefix}cmd/{name}", payload, qos=1,
                                    properties=properties)
        info.wait_for_publish(CLI_TIMEOUT_S)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def _serve_batch(sim: LineSimulation, agent: AgentProcess) -> None:
    """A normal batch: every parcel commanded, each event at central in the rules' bin."""
    parcels = sim.parcels[sim.next_batch:sim.next_batch + BATCH]
    sim.next_batch += BATCH
    before = len(sim.sorter.commands)
    sim.drive(parcels=parcels)
    wait_for(lambda: len(sim.sorter.commands) >= before + BATCH, what="a batch served")
    commanded = {c.parcel_id: int(c.bin) for c in sim.sorter.commands[before:]}
    wait_for(lambda: commanded.keys() <= sim.central.parcels().keys(), what="the batch's events")
    events = {pid: e for pid, e in sim.central.parcels().items() if pid in commanded}
    assert wrong_bins(events, commanded) == []
    assert agent.process.poll() is None


def _status(sim: LineSimulation, command_id: str) -> dict:
    reply = sim.commands.request("status.get", command_id)
    assert reply["ok"], reply
    return reply["result"]


# -- the fuzz -------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
KNOWN = st.sampled_from(sorted(HANDLERS))
# Topic-safe names no handler answers to (no '/', '+', '#': those are not one topic level).
UNKNOWN = st.text(string.ascii_letters + string.digits + "._-", min_size=1,
                  max_size=30).filter(lambda name: name not in HANDLERS)
# For each command's args, values of a type no field accepts (str fields get non-strings etc.).
NOT_A_STRING = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=3)
NOT_A_LIST = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
WRONG_ARGS = {
    "rules.apply": st.fixed_dictionaries({"rules": NOT_A_STRING}),
    "manifest.upsert": st.fixed_dictionaries({"entries": NOT_A_LIST}),
    "manifest.remove": st.fixed_dictionaries({"barcodes": NOT_A_LIST}),
    "lanes.set": st.fixed_dictionaries({"lane": NOT_A_STRING, "state": NOT_A_STRING}),
    "holds.put": st.fixed_dictionaries({"holds": NOT_A_LIST}),
    "holds.lift": st.fixed_dictionaries({"hold_ids": NOT_A_LIST}),
    "status.get": st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, min_size=1,
                                  max_size=3),
    "ping": st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, min_size=1, max_size=3),
}


def _not_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return True
    return False


def _not_a_request(value) -> bool:
    return not (isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"])


@st.composite
def bad_commands(draw) -> tuple[str, bytes, set[str]]:
    """(command name, payload, the error codes that may answer it)."""
    kind = draw(st.sampled_from(["not_json", "random_json", "wrong_types", "too_large",
                                 "unknown_name"]))
    command_id = "fuzz-" + draw(st.text(string.ascii_letters, min_size=1, max_size=12))
    if kind == "not_json":
        return draw(KNOWN), draw(st.binary(min_size=1, max_size=200).filter(_not_json)), {
            "bad_json"}
    if kind == "random_json":
        value = draw(JSON_VALUES.filter(_not_a_request))
        return draw(KNOWN), json.dumps(value).encode(), {"bad_request"}
    if kind == "wrong_types":
        name = draw(KNOWN)
        body = {"id": command_id, "args": draw(WRONG_ARGS[name])}
        if draw(st.booleans()):  # or the envelope itself of the wrong shape
            body = {"id": draw(NOT_A_STRING), "args": draw(JSON_VALUES)}
        return name, json.dumps(body).encode(), {"bad_request"}
    if kind == "too_large":
        size = draw(st.integers(MAX_COMMAND_BYTES + 1, 4 * MAX_COMMAND_BYTES))
        body = json.dumps({"id": command_id, "args": {}, "pad": "x" * size}).encode()
        return draw(KNOWN), body, {"too_large"}
    body = json.dumps({"id": command_id, "args": {}}).encode()
    return draw(UNKNOWN), body, {"unknown_command"}


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(commands=st.lists(bad_commands(), min_size=1, max_size=5))
def _fuzz_round(sim: LineSimulation, agent: AgentProcess, commands) -> None:
    """One example: a few bad commands sent back to back, then every reply checked."""
    sim.fuzz_sent = getattr(sim, "fuzz_sent", 0)
    correlations = []
    for name, payload, _ in commands:
        sim.fuzz_sent += 1
        correlation = f"corr-{sim.fuzz_sent}"
        correlations.append(correlation)
        sim.raw.send(name, payload, correlation)
    for correlation, (name, payload, codes) in zip(correlations, commands, strict=True):
        reply = wait_for(lambda c=correlation: sim.commands.replies.get(c.encode()),
                         what=f"a reply to {name} {payload[:60]!r}")
        assert reply["ok"] is False, (name, payload[:200], reply)
        assert reply["error"]["code"] in codes, (name, payload[:200], reply)
        assert reply["error"]["message"]
    assert agent.process.poll() is None, agent.log_tail()


def test_fuzzed_commands_are_refused_and_the_agent_keeps_serving(line):
    sim, agent = line
    _fuzz_round(sim, agent)
    assert sim.fuzz_sent >= FUZZ_EXAMPLES
    status = _status(sim, "after-fuzz-status")
    assert status["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    assert status["agent"]["pid"] == agent.process.pid
    assert {lane["state"] for lane in status["lanes"].values()} == {"open"}
    assert sim.commands.request("ping", "after-fuzz-ping")["result"] == {"pong": True}
    _serve_batch(sim, agent)


def test_a_replayed_lanes_set_gets_the_same_reply_and_acts_once(line):
    sim, agent = line
    first = sim.commands.request("lanes.set", "block-zhuhai-1",
                                 {"lane": "ZHUHAI", "state": "blocked"})
    assert first["ok"], first
    assert _status(sim, "replay-status-1")["lanes"]["ZHUHAI"]["state"] == "blocked"
    reopened = sim.commands.request("lanes.set", "open-zhuhai-1",
                                    {"lane": "ZHUHAI", "state": "open"})
    assert reopened["ok"], reopened
    sim.commands.replies.pop(b"block-zhuhai-1")
    again = sim.commands.request("lanes.set", "block-zhuhai-1",
                                 {"lane": "ZHUHAI", "state": "blocked"})
    assert again == first
    # Acted once: the replay did not block the lane central has since reopened.
    assert _status(sim, "replay-status-2")["lanes"]["ZHUHAI"]["state"] == "open"
    _serve_batch(sim, agent)


def test_a_broken_rule_set_pushed_by_central_is_refused(line):
    sim, agent = line
    reply = sim.commands.request("rules.apply", "broken-rules-1", {"rules": BROKEN_RULES})
    assert reply["ok"] is False and reply["error"]["code"] == "rejected"
    assert any("bin" in problem for problem in reply["error"]["problems"]), reply
    assert _status(sim, "rules-status-1")["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    not_toml = sim.commands.request("rules.apply", "broken-rules-2", {"rules": "lanes = [[["})
    assert not_toml["ok"] is False and not_toml["error"]["problems"], not_toml
    _serve_batch(sim, agent)  # routed by the default rules (wrong_bins re-decides with them)


def test_sighup_with_a_corrupted_rules_file_keeps_the_old_rules(line):
    sim, agent = line
    sim.rules_file.write_bytes(GOOD_RULES.encode()[:len(GOOD_RULES) // 2] + b"\x00\xff[[")
    agent.process.send_signal(signal.SIGHUP)
    alarm = wait_for(lambda: next(iter(sim.central.alarms("rules_reload_refused")), None),
                     what="the rules_reload_refused alarm at central")
    assert alarm["details"]["problems"], alarm
    assert _status(sim, "sighup-status")["agent"]["rules_version"] == DEFAULT_RULES_VERSION
    _serve_batch(sim, agent)
    sim.rules_file.write_text(GOOD_RULES)


# -- files given to the command line --------------------------------------------------------------

def test_a_corrupted_config_file_exits_2_naming_the_field_and_starts_nothing(tmp_path):
    state_dir = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(f'site = "SIM"\nline = "L1"\nstate_dir = "{state_dir}"\n\n'
                      '[pairing]\nmode = "poll-after-scan"\npoll_timeout_ms = "soon"\n')
    result = run_cli("run", "--config", str(config))
    assert result.returncode == EXIT_CONFIG_ERROR, result.stderr
    assert "pairing.poll_timeout_ms" in result.stderr
    assert not state_dir.exists()  # no outbox, no status socket, no pid: nothing started
    config.write_bytes(b'site = "SIM"\nline = \x00\xfe\n[pairing')  # not even TOML
    result = run_cli("run", "--config", str(config))
    assert result.returncode == EXIT_CONFIG_ERROR, result.stderr
    assert str(config) in result.stderr
    assert not state_dir.exists()


def test_a_truncated_manifest_import_is_refused_whole(tmp_path):
    sim = LineSimulation(tmp_path / "line", parcel_mix(60, seed=67), rate=RATE)
    sim.prepare()
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        assert agent.terminate() == 0
    finally:
        agent.ensure_stopped()
        sim.close()
    old = next(p for p in sim.parcels if p.manifest is not None)
    state = ["--state-dir", str(sim.state_dir), "--json"]
    before = json.loads(run_cli("manifest", "show", old.barcode, *state).stdout)
    new_rows = [{"barcode": f"LP{900000 + i:09d}HK", "country": "CN", "postal_code": "200120"}
                for i in range(5)]
    text = "".join(json.dumps(row) + "\n" for row in [{**old.manifest, "country": "JP"}, *new_rows])
    truncated = tmp_path / "truncated.jsonl"
    truncated.write_text(text[:-25])  # cut inside the last row, as a copy that stopped short
    result = run_cli("manifest", "import", str(truncated), *state)
    assert result.returncode != 0
    assert "line 6" in result.stderr, result.stderr
    assert json.loads(run_cli("manifest", "show", old.barcode, *state).stdout) == before
    missing = run_cli("manifest", "show", new_rows[0]["barcode"], *state)
    assert missing.returncode == 1  # the good rows before the bad line were not imported either
