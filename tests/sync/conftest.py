"""Sync tests' shared set-up."""

import pytest
import structlog


@pytest.fixture(autouse=True)
def _fresh_structlog():
    # A CLI test elsewhere may have pointed structlog at a captured stderr that pytest has since
    # closed; logging from the link's threads would then fail. Start each test from defaults.
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
