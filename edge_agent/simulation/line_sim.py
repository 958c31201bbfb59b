"""A whole simulated line on pseudo-terminals: scanner, checkweigher and sorter.

`LineSimulation` writes what `edge-agent run` needs (DIR/agent.toml pointing at the ptys,
DIR/manifest.jsonl, already imported into DIR/state), waits until an agent has opened every
device, sends the parcels at the requested rate, and records every lane command the sorter
receives in DIR/sorter.jsonl. It is both `edge-agent simulate line` and the demo's line.

The scale is a platter at the scanner, polled after each scan (MT-SICS `S`): each parcel is
placed on it as its label is read, and the scale answers with whatever its platter holds once
settled (`S I` for a parcel that never settles). Every parcel has its own weight, so pairing is
checkable: each parcel's event must carry exactly its own weight, or none.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.devices.simulators import ScaleSimulator, ScannerSimulator, SorterSimulator
from edge_agent.devices.simulators.sorter import LaneCommand
from edge_agent.simulation.parcel_mix import SimParcel

SCANNER_PROFILE = "generic-scanner"
SCALE_PROFILE = "mt-sics"
SORTER_PROFILE = "generic-divert"
# How long `wait_for_agent` polls the agent's status socket before giving up.
AGENT_READY_TIMEOUT_S = 30.0
# After the last parcel, how long lane commands may still take to arrive.
DRAIN_TIMEOUT_S = 15.0
# How long the simulated platter takes to settle on a new parcel before `S` answers. Real
# scales take tens to hundreds of milliseconds; the simulated line runs hundreds of parcels a
# second, so it settles fast, but later than the agent's reorder margin (agent_config_text):
# a reply sooner than that after its scan could not be proven to be the parcel's.
SETTLE_S = 0.001


class PlatterScale(ScaleSimulator):
    """An MT-SICS scale at the scanner: `S` answers with what is on the platter once it settled.

    `place(kg)` puts a parcel on the platter (None: one that never settles, answered `S I`);
    the platter holds it until the next one. A reply reflects the platter when the scale
    answers, as a real one does, so a slow answer can carry the next parcel's weight: that is
    what the agent's pairing must catch. The line places each parcel and writes its scan under
    `platter_lock`, so a request made after the agent read a scan always sees that parcel.

    Faults on demand: `drop_replies` (the next N replies are lost on the line),
    `garble_replies` (the next N arrive garbled), `late_replies_s` (every reply that late).
    """

    def __init__(self, link: Path, settle_s: float = SETTLE_S):
        super().__init__(SCALE_PROFILE, link, name="scale")
        self.settle_s = settle_s
        self.platter_lock = threading.Lock()
        self._on_platter: float | None = 0.0  # kg; None: a parcel that never settles
        self._placed_at = 0.0
        self.drop_replies = 0
        self.garble_replies = 0
        self.late_replies_s = 0.0

    def place(self, weight_kg: float | None) -> None:
        """Call with `platter_lock` held (see the class doc)."""
        self._on_platter, self._placed_at = weight_kg, time.monotonic()

    def clear(self) -> None:
        with self.platter_lock:
            self.place(0.0)

    def on_command(self, line: bytes) -> None:
        if line.strip().upper() != b"S":
            super().on_command(line)
            return
        self._answer_when_settled()

    def _answer_when_settled(self) -> None:
        # MT-SICS `S` waits for stability, and a new parcel restarts the wait. The wait is
        # taken on this port's own reader thread (a timer thread started per request was
        # often late by more than a gap between parcels on a loaded machine).
        while True:
            with self.platter_lock:
                weight, settles_in = self._on_platter, self._placed_at + self.settle_s
            wait = settles_in - time.monotonic()
            if wait <= 0:
                break
            time.sleep(wait)
        frame = b"S I\r\n" if weight is None else f"S S {weight:>10.3f} kg\r\n".encode()
        if self.drop_replies > 0:
            self.drop_replies -= 1
            return
        if self.garble_replies > 0:
            self.garble_replies -= 1
            frame = b"S S ###.#\x7f kg\r\n"
        if self.late_replies_s > 0:
            threading.Timer(self.late_replies_s, self.reply, (frame,)).start()
        else:
            self.reply(frame)


def mqtt_table(broker: str | None, telemetry_period_s: float = 2.0) -> str:
    """The `[mqtt]` lines for a simulated line's agent: off, or on to `host:port`."""
    if not broker:
        return "enabled = false"
    host, _, port = broker.rpartition(":")
    return (f'enabled = true\nhost = "{host}"\nport = {int(port)}\n'
            f"telemetry_period_s = {telemetry_period_s}")


def clock_and_mqtt(broker: str | None, telemetry_period_s: float = 2.0) -> str:
    """The `[clock]` and `[mqtt]` tables that end a simulated line's config."""
    return f"""
[clock]
source = "assume-synchronised"

[mqtt]
{mqtt_table(broker, telemetry_period_s)}
"""


def agent_config_text(scanner: Path, scale: Path, sorter: Path, *, broker: str | None = None,
                      site: str = "SIM", line: str = "L1") -> str:
    """An `edge-agent run` config for a simulated line: these device paths, state in ./state."""
    mqtt = mqtt_table(broker)
    return f"""# Written by `edge-agent simulate line`: an agent for the simulated line.
site = "{site}"
line = "{line}"
state_dir = "state"

[devices.scanner]
port = "{scanner}"
profile = "{SCANNER_PROFILE}"

[devices.scale]
port = "{scale}"
profile = "{SCALE_PROFILE}"

[devices.sorter]
port = "{sorter}"
profile = "{SORTER_PROFILE}"

[pairing]
mode = "poll-after-scan"
# Bytes written to two ptys one after the other can become readable in the other order (the
# kernel hands them over from a work queue): a reply counts as before the next scan only with
# this margin (0.05 ms let 0.1-0.5 % of parcels take a neighbour's weight at 500-2,000/s on a
# shared host). Real lines keep the default, 2 ms.
poll_reorder_ms = 0.5

# A simulated line's time is whatever the machine says: do not route on whether this machine's
# clock happens to be NTP-synchronised (the agent on a line keeps the default, "kernel").
[clock]
source = "assume-synchronised"

[mqtt]
{mqtt}
"""


def dws_agent_config_text(dws_lines: str, sorter: Path, *, profile: str = "generic-dws",
                          broker: str | None = None, site: str = "SIM",
                          line: str = "DWS1") -> str:
    """An `edge-agent run` config for a simulated DWS line: a DWS unit reached by `dws_lines`
    (its `[devices.dws]` lines but the profile: a pty's port, or a TCP link), a sorter on a pty,
    state in ./state."""
    return f"""site = "{site}"
line = "{line}"
state_dir = "state"

[devices.dws]
{dws_lines}
profile = "{profile}"

[devices.sorter]
port = "{sorter}"
profile = "{SORTER_PROFILE}"
{clock_and_mqtt(broker)}"""


def sorter_driven_config_text(sorter_lines: str, *, settings: str = "",
                              broker: str | None = None, telemetry_period_s: float = 2.0,
                              site: str = "SIM") -> str:
    """An `edge-agent run` config for a sorter-driven line: the sorter host reached by
    `sorter_lines` (its `[devices.sorter]` lines but the profile) asks for each parcel's lane;
    `settings` are more tables (`[sorter]`...), state in ./state."""
    return f"""site = "{site}"
line = "L1"
state_dir = "state"

[devices.sorter]
{sorter_lines}
profile = "sorter-host-json"
{settings}{clock_and_mqtt(broker, telemetry_period_s)}"""


def write_manifest(out_dir: Path, state_dir: Path, parcels: list[SimParcel]) -> None:
    """DIR/manifest.jsonl with the parcels' manifest rows, imported into the state directory."""
    from edge_agent.sorting.manifest import Manifest
    from edge_agent.state_lock import StateDirLock

    path = out_dir / "manifest.jsonl"
    rows = [parcel.manifest for parcel in parcels if parcel.manifest is not None]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if not rows:
        return  # an import of no rows is refused; no manifest is what such a line has
    # Like `manifest import`: refused while an agent already runs on this state directory.
    with StateDirLock.acquire(state_dir, "simulate line: manifest import"), \
            Manifest.open(state_dir) as manifest:
        manifest.import_file(path)


def wait_for_agent(state_dir: Path, timeout_s: float = AGENT_READY_TIMEOUT_S) -> bool:
    """True once the agent of `state_dir` answers on its status socket with its three devices
    connected; False after `timeout_s`."""
    from edge_agent.runtime.status_server import StatusError, query_status

    socket_path = state_dir / "status.sock"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status = query_status(socket_path, timeout_s=1.0)
        except StatusError:
            status = {}
        devices = status.get("devices") or {}
        if len(devices) == 3 and all(d.get("state") == "connected" for d in devices.values()):
            return True
        # The agent is another process: nothing to wait on but its socket. Poll gently.
        time.sleep(0.05)
    return False


@dataclass
class LineResults:
    sent: int = 0
    commands: list[dict] = field(default_factory=list)
    latencies_us: list[float] = field(default_factory=list)

    def percentile_us(self, q: float) -> float | None:
        if not self.latencies_us:
            return None
        ordered = sorted(self.latencies_us)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class LineSimulation:
    def __init__(self, out_dir: Path, parcels: list[SimParcel], *, rate: float,
                 broker: str | None = None, site: str = "SIM", line: str = "L1"):
        self.out_dir = out_dir.resolve()
        self.parcels = parcels
        self.rate = rate
        self.broker = broker
        self.site, self.line = site, line
        self.state_dir = self.out_dir / "state"
        self.config_path = self.out_dir / "agent.toml"
        devices = self.out_dir / "dev"
        self.scanner = ScannerSimulator(SCANNER_PROFILE, devices / "scanner", name="scanner")
        self.scale = PlatterScale(devices / "scale")
        self.sorter = SorterSimulator(devices / "sorter", name="sorter")
        self._sent_ns: dict[str, int] = {}
        self._results = LineResults()
        self._record_lock = threading.Lock()
        self._sorter_log = None

    # -- set-up ----------------------------------------------------------------------------

    def prepare(self) -> Path:
        """Start the devices, write the config and the manifest; returns the config path."""
        (self.out_dir / "dev").mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for device in (self.scanner, self.scale, self.sorter):
            device.start()
        self._sorter_log = (self.out_dir / "sorter.jsonl").open("a", buffering=1)
        self.sorter.on_lane_command = self._record_lane_command
        self.config_path.write_text(self.agent_config_text())
        self._write_manifest()
        self._write_parcels()
        return self.config_path

    def agent_config_text(self) -> str:
        return agent_config_text(self.scanner.path, self.scale.path, self.sorter.path,
                                 broker=self.broker, site=self.site, line=self.line)

    def _write_manifest(self) -> None:
        write_manifest(self.out_dir, self.state_dir, self.parcels)

    def _write_parcels(self) -> None:
        """What was sent, for tests and replays: the parcels with their intended weights."""
        with (self.out_dir / "parcels.jsonl").open("w") as handle:
            for parcel in self.parcels:
                handle.write(json.dumps({
                    "index": parcel.index, "category": parcel.category,
                    "barcode": parcel.barcode, "symbology": parcel.symbology,
                    "weight_kg": parcel.weight_kg,
                }) + "\n")

    # -- running -----------------------------------------------------------------------------

    def wait_for_agent(self, timeout_s: float = AGENT_READY_TIMEOUT_S) -> bool:
        """True once an agent answers on its status socket with every device connected."""
        return wait_for_agent(self.state_dir, timeout_s)

    def drive(self, on_progress=None, parcels: list[SimParcel] | None = None) -> None:
        """Send the parcels (default: all) at `rate` per second, paced against the clock."""
        interval_ns = int(1e9 / self.rate)
        start = time.monotonic_ns()
        for number, parcel in enumerate(self.parcels if parcels is None else parcels):
            due = start + number * interval_ns
            while (wait := due - time.monotonic_ns()) > 0:
                time.sleep(min(wait / 1e9, 0.01))
            self.send_parcel(parcel)
            if on_progress is not None and number % 100 == 0:
                on_progress(number)

    def send_parcel(self, parcel: SimParcel) -> None:
        """One parcel passes: its label is read as it reaches the platter."""
        if parcel.barcode is None:
            frame = b"NOREAD\r\n"
        else:
            frame = ((parcel.symbology or "") + parcel.barcode).encode("latin-1") + b"\r\n"
        key = parcel.barcode if parcel.barcode is not None else f"noread-{parcel.index}"
        with self._record_lock:
            self._sent_ns[key] = time.monotonic_ns()
            self._results.sent += 1
        with self.scale.platter_lock:
            self.scanner.send_raw(frame)
            self.scale.place(parcel.weight_kg)

    def wait_for_lane_commands(self, timeout_s: float = DRAIN_TIMEOUT_S) -> int:
        self.sorter.wait_for_commands(self._results.sent, timeout_s)
        return len(self.sorter.commands)

    def _record_lane_command(self, command: LaneCommand) -> None:
        barcode = command.barcode
        record = {
            "parcel_id": command.parcel_id, "barcode": barcode, "bin": int(command.bin),
            "time": datetime.now(UTC).isoformat(timespec="microseconds"),
        }
        with self._record_lock:
            sent_ns = self._sent_ns.get(barcode) if barcode is not None else None
            if sent_ns is not None:
                self._results.latencies_us.append((command.received_ns - sent_ns) / 1000)
            self._results.commands.append(record)
            if self._sorter_log is not None:
                self._sorter_log.write(json.dumps(record) + "\n")

    @property
    def results(self) -> LineResults:
        return self._results

    def close(self) -> None:
        for device in (self.scanner, self.scale, self.sorter):
            device.stop()
        if self._sorter_log is not None:
            self._sorter_log.close()
            self._sorter_log = None
