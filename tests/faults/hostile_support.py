"""Helpers of the hostile-command tests: a sender of any bytes (retained or not), parcels that
keep flowing in the background, and the agent process's resident memory."""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.waiting import wait_for

from edge_agent.simulation.line_sim import LineSimulation

PUBLISH_TIMEOUT_S = 30.0


def dated_command(command_id: str, args: dict | None = None, *, age_s: float = 0.0,
                  lifetime_s: float | None = None) -> bytes:
    """A command as central sends it, issued `age_s` seconds ago (negative: in the future)."""
    issued = datetime.now(UTC) - timedelta(seconds=age_s)
    body: dict = {"id": command_id, "args": args or {}, "issued_at": issued.isoformat()}
    if lifetime_s is not None:
        body["expires_at"] = (issued + timedelta(seconds=lifetime_s)).isoformat()
    return json.dumps(body).encode()


class CommandSender:
    """Publishes any bytes as a command, retained or not, with a response topic and
    correlation data: replies land in a CentralClient's `replies` under the correlation.

    The MQTT client runs in a process of its own (spawned): pushing megabytes of payload
    through paho takes this process's interpreter, which the line's simulators share, and
    their timestamps (the latencies the tests bound) would carry the sender's cost. `send`
    returns once the broker acknowledged the message, as before."""

    def __init__(self, host: str, port: int, prefix: str, client_id: str = "hostile-sender"):
        self.prefix = prefix
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_sender_main, daemon=True,
                                        args=(child, host, port, prefix, client_id))
        self._process.start()
        child.close()
        self._expect("connected")
        self._count = 0

    def _expect(self, what: str) -> None:
        if not self._conn.poll(PUBLISH_TIMEOUT_S):
            raise AssertionError(f"the sender process did not say {what!r} in time")
        answer = self._conn.recv()
        assert answer == what, answer

    def send(self, name: str, payload: bytes, *, retain: bool = False,
             correlation: str | None = None) -> str:
        self._count += 1
        correlation = correlation or f"hostile-{self._count}"
        self._conn.send(("send", name, payload, retain, correlation))
        self._expect("published")
        return correlation

    def clear_retained(self, name: str) -> None:
        """An empty retained message deletes the broker's retained one for that topic."""
        self._conn.send(("clear", name))
        self._expect("published")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(PUBLISH_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()  # our own child, by its handle
            self._process.join()
        self._conn.close()


def _sender_main(conn, host: str, port: int, prefix: str, client_id: str) -> None:
    # Central sends from other machines: here the sender's CPU comes from idle time only, so
    # the line's computer (this 2-core machine) does not pay for producing the flood.
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.connect(host, port)
    client.loop_start()
    wait_for(client.is_connected, what="sender connected")
    conn.send("connected")
    while (request := conn.recv()) is not None:
        if request[0] == "clear":
            client.publish(f"{prefix}cmd/{request[1]}", b"", qos=1,
                           retain=True).wait_for_publish(PUBLISH_TIMEOUT_S)
        else:
            _, name, payload, retain, correlation = request
            properties = Properties(PacketTypes.PUBLISH)
            properties.ResponseTopic = f"{prefix}reply/hostile"
            properties.CorrelationData = correlation.encode()
            client.publish(f"{prefix}cmd/{name}", payload, qos=1, retain=retain,
                           properties=properties).wait_for_publish(PUBLISH_TIMEOUT_S)
        conn.send("published")
    client.loop_stop()
    client.disconnect()


class ParcelFlow:
    """Sends the simulation's parcels at `rate` in a background thread, from `start` on,
    until stopped; the latencies of the parcels it sent are read after `stop()`."""

    def __init__(self, sim: LineSimulation, rate: float, start: int = 0):
        self._sim = sim
        self._rate = rate
        self._next = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self._first_latency = 0

    def __enter__(self) -> ParcelFlow:
        self._first_latency = len(self._sim.results.latencies_us)
        self._commands_before = len(self._sim.sorter.commands)
        # The simulated line's devices are threads of this (pytest's) process, and they time
        # the parcels. Late in a full run this process holds a large heap, and one collection
        # of it paused the devices ~100 ms in the middle of a flow (one episode of 14-17 late
        # parcels, seen only in full runs): not the agent's latency. No collection while the
        # line runs; one before.
        gc.collect()
        gc.disable()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        interval = 1.0 / self._rate
        due = time.monotonic()
        while not self._stop.is_set():
            parcel = self._sim.parcels[self._next % len(self._sim.parcels)]
            self._next += 1
            self._sim.send_parcel(parcel)
            self.sent += 1
            due += interval
            self._stop.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        gc.enable()

    @property
    def position(self) -> int:
        return self._next

    def wait_all_commanded(self) -> None:
        """Every parcel sent got its lane command (the sorter saw one per parcel)."""
        want = self._commands_before + self.sent
        wait_for(lambda: len(self._sim.sorter.commands) >= want,
                 what=f"{self.sent} lane commands")

    def latencies_ms(self) -> list[float]:
        return sorted(self.latencies_in_order_ms())

    def latencies_in_order_ms(self) -> list[float]:
        """As the lane commands arrived (parcel order, give or take a reordering)."""
        return [us / 1000 for us in self._sim.results.latencies_us[self._first_latency:]]


def stall_episodes(in_order: list[float], bound_ms: float, join_gap: int = 3) -> list[int]:
    """The lengths (in parcels) of the runs of parcels over `bound_ms`; parcels over it less
    than `join_gap` apart belong to one run (one stall delays the parcels queued behind it)."""
    episodes: list[int] = []
    last = None
    for index, latency in enumerate(in_order):
        if latency <= bound_ms:
            continue
        if last is not None and index - last < join_gap:
            episodes[-1] += 1
        else:
            episodes.append(1)
        last = index
    return episodes


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"process {pid} has no VmRSS (exited?)")
