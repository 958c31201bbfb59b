"""Firmware profiles: one TOML file per device model (see edge_agent.devices.profiles)."""
