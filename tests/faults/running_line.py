"""The fault suite's line under test: a broker, a simulated line, central subscribed to every
event, and the agent as its own process, ready; all of it stopped by pid afterwards, whatever
the test did. One set-up for every fault module, which differ only in their parcels, their
config edits and the extra central clients they connect."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fault_support import Central
from line_harness import AgentProcess, CentralClient
from support.broker import MosquittoBroker

from edge_agent.config import load_config
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import SimParcel
from edge_agent.sorting.rules import default_rules

# The shipped rules as text, as central would send them, and their version.
GOOD_RULES = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()
DEFAULT_RULES_VERSION = default_rules().version
# A command-line run (config check, rules check, a refused start) ends in a second or two.
CLI_TIMEOUT_S = 30.0


@dataclass
class RunningLine:
    sim: LineSimulation
    broker: MosquittoBroker
    prefix: str
    central: Central
    agent: AgentProcess = field(init=False)
    rules_file: Path | None = None  # with rules_from_file: the file the agent reads its rules from
    commands: CentralClient | None = None  # with rules_from_file: central's command client
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    def connected(self, client: Any) -> Any:
        """A client of central's (commands, raw sender...), closed before the line stops."""
        self._stack.callback(client.close)
        return client

    def client(self, kind: Callable[[str, int, str], Any]) -> Any:
        """A client of central's made for this line's broker and topics, and `connected`."""
        return self.connected(kind(self.broker.host, self.broker.port, self.prefix))


@contextlib.contextmanager
def fault_line(
    work_dir: Path,
    parcels: Iterable[SimParcel],
    *,
    rate: float,
    broker_config: str | None = None,
    rules_from_file: bool = False,
    configure: Callable[[LineSimulation], None] | None = None,
    connect: Callable[[RunningLine], None] | None = None,
) -> Iterator[RunningLine]:
    """`rules_from_file`: the agent reads GOOD_RULES from a file of its own (`line.rules_file`,
    which SIGHUP reloads) and central has a command client (`line.commands`). `configure(sim)`
    edits the prepared config before anything reads it; `connect(line)` adds central's other
    clients (line.connected) before the agent starts. `sim.central`, `sim.commands` and
    `sim.rules_file` are the line's, for the tests that only hold the simulation."""
    with contextlib.ExitStack() as stack:
        options = {"extra_config": broker_config} if broker_config else {}
        broker = MosquittoBroker(work_dir / "broker", **options).start()
        stack.callback(broker.close)
        sim = LineSimulation(work_dir / "line", list(parcels), rate=rate,
                             broker=f"{broker.host}:{broker.port}")
        stack.callback(sim.close)
        sim.prepare()
        rules_file = work_dir / "rules.toml" if rules_from_file else None
        if rules_file is not None:
            rules_file.write_text(GOOD_RULES)
            with_rules(sim, rules_file)
        if configure is not None:
            configure(sim)
        prefix = load_config(sim.config_path).topic_prefix
        line = RunningLine(sim, broker, prefix, Central(broker.host, broker.port, prefix),
                           rules_file=rules_file)
        stack.enter_context(line._stack)
        line.connected(line.central)
        if rules_from_file:
            line.commands = line.connected(CentralClient(broker.host, broker.port, prefix))
        # Where the fault tests look for them.
        sim.central, sim.commands, sim.rules_file = line.central, line.commands, rules_file
        if connect is not None:
            connect(line)
        line.agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
        stack.callback(line.agent.ensure_stopped)
        assert sim.wait_for_agent(), line.agent.log_tail()
        yield line


def with_rules(sim: LineSimulation, rules_file: Path) -> None:
    """The agent reads its rules from `rules_file` (central's rules.update rewrites it)."""
    sim.config_path.write_text(sim.config_path.read_text().replace(
        "[pairing]", f'[rules]\nfile = "{rules_file}"\n\n[pairing]'))


def rules_with_first_bin(version: str, first_bin: int) -> str:
    """GOOD_RULES under another version, the first lane's bin changed (to one the rules or the
    sorter refuse)."""
    return (GOOD_RULES.replace(f'version = "{DEFAULT_RULES_VERSION}"', f'version = "{version}"')
            .replace("bin = 1\n", f"bin = {first_bin}\n", 1))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`edge-agent ARGS...` as its own process, as a technician would run it."""
    return subprocess.run([sys.executable, "-m", "edge_agent", *args], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S)
