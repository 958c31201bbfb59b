"""The plain baseline for the line benchmark: pyserial -> trivial rule -> paho publish.

    .venv/bin/python bench/baseline_pipe.py --config DIR/agent.toml

It serves the same simulated line as `edge-agent run` (it reads the device paths and the broker
from the agent's config) the way a first attempt would: one thread per serial port, each
reading in chunks (never pyserial's readline(), a system call per byte), a scan answered by
asking the scale for a weight and taking the latest weight the scale's thread has seen, a
one-line rule for the bin, the lane command written, and the event published with QoS 1. No
durable store, no validation, no supervision: it shows what the agent's guarantees cost.

Its one flaw is the point of the comparison: "the latest weight" belongs to whichever parcel
the scale's thread last heard about, so when scanner and scale threads race, a parcel can go
out with its neighbour's weight. Each published event carries the barcode and the weight used,
so the benchmark counts how often that happens.

Speaks sd_notify's READY=1 to $NOTIFY_SOCKET once every port is open and the broker connected,
so its start-up is timed the same way as the agent's; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import threading
import tomllib
from pathlib import Path
from urllib.parse import quote

import paho.mqtt.client as mqtt
import serial

# How long a scan waits for the scale's answer before deciding on the latest weight seen.
WEIGHT_WAIT_S = 0.05
# One blocking read returns after this long even with no bytes, so SIGTERM is noticed.
READ_TIMEOUT_S = 0.2
READ_CHUNK_BYTES = 4096
# The trivial rule: these bins match the default rules' lanes (1 ZHUHAI ... 4 EXCEPTION).
BIN_SHANGHAI, BIN_EXPORT, BIN_EXCEPTION = 2, 3, 4
AIM_ID_LENGTH = 3  # "]C1": a symbology identifier the scanner may put before the data


class BaselinePipe:
    def __init__(self, config: dict, config_dir: Path):
        devices = config["devices"]

        def open_port(name: str) -> serial.Serial:
            path = Path(devices[name]["port"])
            path = path if path.is_absolute() else config_dir / path
            return serial.Serial(str(path), 9600, timeout=READ_TIMEOUT_S)

        self.scanner, self.scale, self.sorter = (
            open_port(name) for name in ("scanner", "scale", "sorter")
        )
        self.topic = f"sortline/v1/{config['site']}/{config['line']}/events/parcel"
        broker = config["mqtt"]
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="baseline-pipe",
                                  protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(64)
        self.client.connect(broker["host"], int(broker["port"]))
        self.client.loop_start()
        self.running = True
        self.latest_weight: float | None = None
        self.weight_arrived = threading.Event()
        self.ids = itertools.count(1)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._read_lines, args=(port, handler), daemon=True)
            for port, handler in ((self.scanner, self._on_scan), (self.scale, self._on_weight),
                                  (self.sorter, lambda line: None))
        ]
        for thread in threads:
            thread.start()
        _notify_ready()
        for thread in threads:
            thread.join()
        self.client.loop_stop()
        self.client.disconnect()

    def _read_lines(self, port: serial.Serial, handler) -> None:
        buffer = b""
        while self.running:
            data = port.read(max(1, port.in_waiting))  # blocks for the first byte, then chunks
            if not data:
                continue
            buffer += data
            *lines, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
            for line in lines:
                if line:
                    handler(line)

    def _on_weight(self, line: bytes) -> None:
        parts = line.split()
        if len(parts) >= 3 and parts[:2] == [b"S", b"S"]:
            self.latest_weight = float(parts[2])
        elif parts[:2] == [b"S", b"I"]:
            self.latest_weight = None
        self.weight_arrived.set()

    def _on_scan(self, line: bytes) -> None:
        text = line.decode("latin-1")
        barcode = None if text in ("NOREAD", "NR") else text
        if barcode is not None and barcode.startswith("]"):
            barcode = barcode[AIM_ID_LENGTH:]
        self.weight_arrived.clear()
        self.scale.write(b"S\r\n")
        self.weight_arrived.wait(WEIGHT_WAIT_S)
        weight = self.latest_weight
        bin_ = _trivial_rule(barcode, weight)
        parcel_id = f"b{next(self.ids)}"
        label = b" " + quote(barcode, safe="").encode() if barcode else b""
        self.sorter.write(b"DIV %s %d%s\r\n" % (parcel_id.encode(), bin_, label))
        event = {"parcel_id": parcel_id, "barcode": barcode, "bin": bin_,
                 "inputs": {"weight_kg": weight}}
        self.client.publish(self.topic, json.dumps(event), qos=1)


def _trivial_rule(barcode: str | None, weight: float | None) -> int:
    if barcode is None or weight is None:
        return BIN_EXCEPTION
    return BIN_SHANGHAI if barcode.endswith("CN") or barcode.startswith("00") else BIN_EXPORT


def _notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"READY=1", address)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the agent.toml of the line")
    args = parser.parse_args()
    config = tomllib.loads(args.config.read_text())
    pipe = BaselinePipe(config, args.config.parent)

    def stop(signum: int, frame: object) -> None:
        pipe.running = False

    signal.signal(signal.SIGTERM, stop)
    pipe.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
