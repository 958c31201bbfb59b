"""`edge-agent diag ...`: the technicians' tools, one module per subcommand; this one only
registers them. Each module adds its subcommands through `register`'s `commands`
(`diag_watch.add_ports_parser` and `add_watch_parser` are the pattern), and none imports this
one, so the group stays free of import circles.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("diag", help="diagnose serial ports and devices")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="diag_command", metavar="SUBCOMMAND")
    from edge_agent.cli.diag_watch import add_ports_parser, add_watch_parser

    add_ports_parser(commands)
    add_watch_parser(commands)
    from edge_agent.cli.status_cmd import add_status_parser

    add_status_parser(commands)
    from edge_agent.cli.diag_mqtt import add_mqtt_parser

    add_mqtt_parser(commands)
    from edge_agent.cli.diag_device import register_device_parsers

    register_device_parsers(commands)
    from edge_agent.cli.diag_capture import add_capture_parser

    add_capture_parser(commands)
    from edge_agent.cli.diag_pairing import add_pairing_parser

    add_pairing_parser(commands)
    from edge_agent.cli.diag_bundle import add_bundle_parser

    add_bundle_parser(commands)
