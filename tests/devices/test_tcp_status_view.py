"""How `diag status` shows a device on the network: its state, and why it is not linked."""

from __future__ import annotations

from rich.console import Console

from edge_agent.cli.status_sections import devices_table


def rendered(devices: dict) -> str:
    console = Console(width=100, record=True, color_system=None)
    console.print(devices_table(devices, None))
    return console.export_text()


def test_a_server_waiting_for_its_device_says_where_it_listens() -> None:
    text = rendered({"sorter": {"state": "connecting", "transport": "tcp", "role": "server",
                                "path": "tcp-listen://0.0.0.0:5001", "last_error": None,
                                "counters": {}}})
    assert "sorter: listening on tcp-listen://0.0.0.0:5001, no device connected yet" in text


def test_a_refused_client_shows_the_reason() -> None:
    reason = "connection refused by 192.168.10.21:4001 (nothing listening)"
    text = rendered({"dws": {"state": "disconnected", "transport": "tcp", "role": "client",
                             "path": "tcp://192.168.10.21:4001", "last_error": reason,
                             "counters": {}}})
    assert f"dws: {reason}" in text


def test_a_linked_server_says_nothing_more() -> None:
    text = rendered({"sorter": {"state": "connected", "transport": "tcp", "role": "server",
                                "path": "tcp-listen://0.0.0.0:5001", "last_error": None,
                                "counters": {}}})
    assert "listening on" not in text
