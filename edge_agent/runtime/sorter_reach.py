"""Which bins the line's sorter can be told to use: what a rule set must stay within.

A rule set is data; the sorter's protocol is not. generic-divert carries bins 1-99
(`DIV <parcel_id> <bin>`), so a lane on bin 120 validates as a rule set but cannot be carried
out: the first parcel for it would fail in the decision loop. Every way a rule set comes in
(central's rules.apply, SIGHUP, the file at start, `edge-agent rules check`) checks it here
against the configured sorter's profile, so what is accepted is what the line can run.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config import AgentConfig
from edge_agent.devices.profiles import ProfileError, load_profile
from edge_agent.devices.sorter_host import MAX_CHUTE, MIN_CHUTE
from edge_agent.devices.sorter_protocol import MAX_BIN, MIN_BIN

# The sorter profile assumed when no configuration names one (`rules check` without --config).
DEFAULT_SORTER_PROFILE = "generic-divert"
# Bins each sorter protocol can address.
PROTOCOL_BINS = {"generic-divert": (MIN_BIN, MAX_BIN), "sorter-host": (MIN_CHUTE, MAX_CHUTE)}


@dataclass(frozen=True)
class SorterReach:
    profile: str
    lowest_bin: int
    highest_bin: int

    def problems(self, rules: object) -> list[str]:
        """One problem per lane whose bin this sorter cannot address."""
        lanes = getattr(rules, "lanes", {})
        return [
            f"lanes.{name}.bin: bin {lane.bin} is outside the bins sorter profile "
            f"{self.profile!r} can address ({self.lowest_bin}-{self.highest_bin})"
            for name, lane in lanes.items()
            if not self.lowest_bin <= lane.bin <= self.highest_bin
        ]


def reach_of_profile(name: str) -> SorterReach:
    """The reach of a sorter profile by name; ProfileError if it is unknown or not a sorter."""
    profile = load_profile(name)
    bins = PROTOCOL_BINS.get(profile.decode.protocol)
    if profile.kind != "sorter" or bins is None:
        raise ProfileError(name, [f"kind: {profile.kind!r} is not a sorter profile"])
    return SorterReach(profile.name, *bins)


def reach_of_config(config: AgentConfig) -> SorterReach:
    """The configured sorter's reach; the default profile's when the config names no sorter
    (a line without one yet still gets rules its future sorter can carry)."""
    for device in config.devices.values():
        try:
            return reach_of_profile(device.profile)
        except ProfileError:
            continue  # a scanner or scale profile (or an unknown one: config check says so)
    return reach_of_profile(DEFAULT_SORTER_PROFILE)
