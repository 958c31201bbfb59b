"""`edge-agent diag mqtt`: test the broker link with the agent's own settings.

Connects as the agent would (a client id of its own, so the running agent stays connected),
publishes to the line's diagnostic topic and reads it back, then prints the round-trip time,
the TLS session and the broker's reason code at each step. Exit 0 when the message came back,
1 when a step failed (the step and the broker's answer are printed), 2 for a bad config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.cli.doctor_cmd import DEFAULT_CONFIG
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK

# Advice for the step that failed, in the words a technician acts on.
ADVICE = {
    "connect": "is the broker up and the port open? try: nc -zv HOST PORT",
    "tls": "check mqtt.tls (CA, certificate, key); edge-agent doctor checks their dates",
    "credentials": "check mqtt.username and the password file, or the client certificate",
    "subscribe": "the broker's ACL must let this line read SITE/LINE/diag/#",
    "publish": "the broker's ACL must let this line write its topics",
    "read back": "the broker's ACL must let this line read SITE/LINE/diag/#",
}


def add_mqtt_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("mqtt", help="publish to the broker and read it back")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="FILE",
                        help=f"the agent's config (default {DEFAULT_CONFIG})")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="longest wait for each step (default 5)")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.set_defaults(handler=run_mqtt)


def run_mqtt(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.diagnostics.mqtt_probe import probe_broker
    from edge_agent.safe_text import terminal_safe

    config = load_config(args.config)  # ConfigError: the CLI prints it and exits 2
    if not config.mqtt.enabled:
        print(f"mqtt.enabled is false in {args.config}: nothing to test")
        return 1
    report = probe_broker(config, timeout_s=args.timeout)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return EXIT_OK if report.ok else EXIT_FAILED

    # The broker's certificate subject, reason codes and errors come from the network.
    def say(line: str) -> None:
        print(terminal_safe(line))

    say(f"broker      {report.broker} (MQTT {config.mqtt.protocol})")
    if report.tls:
        tls = report.tls
        say(f"tls         {tls['version']} {tls['cipher']}")
        say(f"server      {tls['server_subject']} (until {tls['server_not_after']})")
    elif report.failed_step not in ("connect", "tls"):
        say("tls         none (plain TCP)")
    for label, value in (("connack", report.connack), ("suback", report.suback),
                         ("puback", report.puback)):
        if value is not None:
            say(f"{label:<11} {value}")
    say(f"topic       {report.topic}")
    if report.ok:
        say(f"round trip  {report.round_trip_ms} ms (publish to read back)")
        say("OK")
        return 0
    say(f"FAILED at {report.failed_step}: {report.error}")
    say(f"  -> {ADVICE.get(report.failed_step or '', 'see the broker log')}")
    return 1
