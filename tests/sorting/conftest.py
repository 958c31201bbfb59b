"""Sorting tests' shared set-up."""

import pytest

from edge_agent.cli import state_location


@pytest.fixture(autouse=True)
def no_installed_config(monkeypatch, tmp_path):
    """The machine running the tests may have an agent installed: a command that falls back to
    the installed config or state directory never reads it here."""
    monkeypatch.setattr(state_location, "DEFAULT_CONFIG", tmp_path / "absent" / "agent.toml")
    monkeypatch.setattr(state_location, "DEFAULT_STATE_DIR", tmp_path / "absent" / "state")
