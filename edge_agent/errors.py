"""The root of every error edge-agent raises on purpose.

Each subsystem has its own root below this one (ConfigError here, ProfileError in devices,
RulesError in sorting, SyncError in sync...), carrying the data that explains it, so callers
catch what they can handle and the CLI turns any EdgeAgentError into a clear message and exit 2.
"""

from __future__ import annotations

from collections.abc import Sequence


class EdgeAgentError(Exception):
    """Something named and explainable went wrong (bad input, missing device...)."""


class ProblemsError(EdgeAgentError):
    """Bad input from one source (a file, a profile, a command): `source` names it, each of
    `problems` one place in it and what is wrong there (`devices.scale.port: ...`). The base of
    ConfigError, ProfileError, RulesError and ManifestError, so they read and print alike."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


class ConfigError(ProblemsError):
    """A configuration file is unreadable or invalid. `problems` lists each one with its place."""
