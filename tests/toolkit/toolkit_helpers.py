"""Helpers for the toolkit tests: the agent config naming simulated devices and a broker."""

from __future__ import annotations

from pathlib import Path

from support.broker import MosquittoBroker


def config_text(state_dir: Path, devices: dict[str, tuple[Path, str]],
                mqtt: str = "enabled = false") -> str:
    lines = ['site = "HKG1"', 'line = "L1"', f'state_dir = "{state_dir}"', "",
             "[outbox]", "disk_budget_mb = 1", "",
             # Named, so no test ever asks a real agent at the unit's /run socket.
             "[status]", f'socket_path = "{state_dir / "status.sock"}"', ""]
    for name, (port, profile) in devices.items():
        lines += [f"[devices.{name}]", f'port = "{port}"', f'profile = "{profile}"', ""]
    lines += ["[mqtt]", mqtt]
    return "\n".join(lines) + "\n"


def broker_mqtt(broker: MosquittoBroker, extra: str = "") -> str:
    return f'enabled = true\nhost = "{broker.host}"\nport = {broker.port}\n{extra}'
