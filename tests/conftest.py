"""Shared test settings. Fixtures that start real things (ptys, mosquitto) live in tests/support
and are registered here for every test: `mosquitto`, `mosquitto_persistent`, `pty_bench`."""

import os

import pytest
import structlog
from hypothesis import HealthCheck, settings

pytest_plugins = ["support.broker", "support.pty_devices"]

# CI machines are small and shared: property tests check behaviour, not speed.
settings.register_profile(
    "ci", deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def fresh_logging():
    """Every test starts and ends with structlog's defaults: a CLI test's main() points it at a
    captured stderr that pytest closes afterwards, and a port, the link or the outbox logging to
    it from another thread later would fail."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
