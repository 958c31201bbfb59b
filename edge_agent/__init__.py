"""edge-agent: the controller beside a parcel sorting line.

Data flows one way through the subpackages:
devices (bytes -> messages) -> sorting (messages -> parcels -> decisions)
-> sync (decisions -> durable outbox -> MQTT); runtime composes them; cli is the technicians' view.
"""

__version__ = "0.1.0"
