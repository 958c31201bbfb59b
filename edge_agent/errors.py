"""The root of every error edge-agent raises on purpose.

Each subsystem has its own root below this one (ConfigError here, ProfileError in devices,
RulesError in sorting, SyncError in sync...), carrying the data that explains it, so callers
catch what they can handle and the CLI turns any EdgeAgentError into a clear message and exit 2.
"""

from __future__ import annotations


class EdgeAgentError(Exception):
    """Something named and explainable went wrong (bad input, missing device...)."""


class ConfigError(EdgeAgentError):
    """A configuration file is unreadable or invalid. `problems` lists each one with its place."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
