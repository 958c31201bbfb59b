"""`edge-agent simulate line`: a whole line on ptys for `edge-agent run` to serve.

    edge-agent simulate line --parcels 1000 --rate 200 --out /tmp/line [--broker 127.0.0.1:1883]
    edge-agent run --config /tmp/line/agent.toml          # in another terminal

Writes DIR/agent.toml, DIR/manifest.jsonl (imported into DIR/state), DIR/parcels.jsonl (what
the line sends), then waits for an agent to open every device, sends the parcels, records each
lane command in DIR/sorter.jsonl, and stops by itself. Stdout carries JSON lines for scripts
(the files at the start, the figures at the end); progress goes to stderr as it runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_agent.cli.demo_cmd import _positive_float, _positive_int
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK

# How long the line waits for someone to run the agent against it.
WAIT_FOR_AGENT_S = 300.0


def add_line_parser(kinds: argparse._SubParsersAction) -> None:
    line = kinds.add_parser("line", help="scanner, checkweigher and sorter for a parcel stream")
    line.add_argument("--parcels", type=_positive_int, required=True,
                      help="how many parcels the line sends")
    line.add_argument("--rate", type=_positive_float, required=True, help="parcels per second")
    line.add_argument("--out", type=Path, required=True, help="directory for the run's files")
    line.add_argument("--broker", metavar="HOST:PORT", type=_broker,
                      help="MQTT broker for the agent's config (default: offline)")
    line.add_argument("--seed", type=int, default=7, help="the parcel mix's random seed")
    line.add_argument("--wait", type=_positive_float, default=WAIT_FOR_AGENT_S,
                      help="seconds to wait for an agent (default %(default)s)")
    line.set_defaults(handler=run_line)


def run_line(args: argparse.Namespace) -> int:
    from edge_agent.simulation.line_sim import LineSimulation
    from edge_agent.simulation.parcel_mix import parcel_mix

    sim = LineSimulation(args.out, parcel_mix(args.parcels, seed=args.seed), rate=args.rate,
                         broker=args.broker)
    try:
        config = sim.prepare()
        print(json.dumps({"config": str(config), "out": str(sim.out_dir),
                          "devices": {name: str(dev.path) for name, dev in
                                      (("scanner", sim.scanner), ("scale", sim.scale),
                                       ("sorter", sim.sorter))}}), flush=True)
        print(f"waiting for an agent: edge-agent run --config {config}", flush=True)
        if not sim.wait_for_agent(args.wait):
            print("no agent opened the devices in time", flush=True)
            return 1
        total = len(sim.parcels)

        def progress(number: int) -> None:
            print(f"sent {number:>{len(str(total))}}/{total}, lane commands "
                  f"{len(sim.results.commands)}", file=sys.stderr, flush=True)

        sim.drive(on_progress=progress)
        commanded = sim.wait_for_lane_commands()
        print(f"sent {sim.results.sent}/{total}, lane commands {commanded}: done",
              file=sys.stderr, flush=True)
        results = sim.results
        p99 = results.percentile_us(0.99)
        print(json.dumps({"sent": results.sent, "lane_commands": commanded,
                          "p50_us": results.percentile_us(0.5), "p99_us": p99,
                          "p999_us": results.percentile_us(0.999)}), flush=True)
        return EXIT_OK if commanded == results.sent else EXIT_FAILED
    finally:
        sim.close()


def _broker(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    return text
