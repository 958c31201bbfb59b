"""The topic tree under the configured prefix (default `sortline/v1/{site}/{line}/`).

One place builds every topic, so the contract in docs/MQTT.md and the code cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

# Outbox kinds and the topic each is published on.
KIND_TOPICS = {"parcel": "events/parcel", "outcome": "events/outcome", "alarm": "events/alarm",
               "telemetry": "telemetry"}


@dataclass(frozen=True)
class Topics:
    prefix: str  # ends with '/'

    @classmethod
    def for_prefix(cls, prefix: str) -> Topics:
        return cls(prefix if prefix.endswith("/") else prefix + "/")

    @property
    def status(self) -> str:
        return self.prefix + "status"

    @property
    def parcel_events(self) -> str:
        return self.prefix + "events/parcel"

    @property
    def outcome_events(self) -> str:
        return self.prefix + "events/outcome"

    @property
    def alarm_events(self) -> str:
        return self.prefix + "events/alarm"

    @property
    def telemetry(self) -> str:
        return self.prefix + "telemetry"

    def device_state(self, device: str) -> str:
        return f"{self.prefix}devices/{device}/state"

    def command(self, name: str) -> str:
        return f"{self.prefix}cmd/{name}"

    @property
    def commands_filter(self) -> str:
        return self.prefix + "cmd/+"

    def reply(self, name: str) -> str:
        """Where replies go when the request names no MQTT v5 response topic (3.1.1)."""
        return f"{self.prefix}reply/{name}"

    def for_kind(self, kind: str) -> str:
        """The topic of an outbox row; unknown kinds are published as alarms' siblings."""
        return self.prefix + KIND_TOPICS.get(kind, f"events/{kind}")

    def command_name(self, topic: str) -> str | None:
        """`cmd/NAME` under our prefix -> NAME; anything else -> None."""
        head = self.prefix + "cmd/"
        if not topic.startswith(head):
            return None
        name = topic[len(head) :]
        return name if name and "/" not in name else None
