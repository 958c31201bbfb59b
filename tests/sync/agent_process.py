"""A minimal agent process for the kill -9 test: outbox + MQTT link, appending events.

    python agent_process.py STATE_DIR PORT COUNT

Appends COUNT parcel events (seq continues where the outbox left off), printing "appended N"
after each batch, and keeps publishing until killed or the outbox is empty and COUNT is 0.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from edge_agent.config import parse_config
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox

BATCH = 50
DRAIN_DEADLINE_S = 60.0


def main(state_dir: str, port: str, count: str) -> int:
    config = parse_config({
        "site": "HKG1", "line": "L1", "state_dir": state_dir,
        "mqtt": {"port": int(port), "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                 "keepalive_s": 5, "max_inflight": 8},
    })
    outbox = Outbox.open(Path(state_dir), config.outbox)
    link = MqttLink(config, outbox)
    link.start()
    total = int(count)
    for start in range(0, total, BATCH):
        for i in range(start, min(total, start + BATCH)):
            outbox.append("parcel", {"parcel_id": f"p{i}"})
        link.notify_appended()
        print(f"appended {min(total, start + BATCH)}", flush=True)
    deadline = time.monotonic() + DRAIN_DEADLINE_S
    while outbox.stats()["depth"] and time.monotonic() < deadline:
        time.sleep(0.02)  # the parent kills us meanwhile, or we exit once drained
    print(f"drained depth={outbox.stats()['depth']}", flush=True)
    link.stop(timeout_s=2)
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
