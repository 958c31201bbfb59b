"""edge-agent: the controller beside a parcel sorting line.

Data flows one way through the subpackages:
devices (bytes -> messages) -> sorting (messages -> parcels -> decisions)
-> sync (decisions -> durable outbox -> MQTT); runtime composes them; cli is the technicians' view.
"""

__version__ = "0.1.0"

import sys

# structlog's dev module imports rich, when it is installed, to format tracebacks in console
# logs. rich is here for the technicians' views only (edge_agent.cli.status_view), and the
# service must not pay its import time and memory at every start: rich is hidden while
# structlog loads (its plain traceback formatter is used), and the views import it as usual.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]  # "import rich" raises ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
