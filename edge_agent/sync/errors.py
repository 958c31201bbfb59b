"""Errors of the sync subsystem (outbox, MQTT link, commands)."""

from __future__ import annotations

from edge_agent.errors import EdgeAgentError


class SyncError(EdgeAgentError):
    """Root of the sync subsystem's errors."""


class CredentialError(SyncError):
    """A password file or systemd credential is missing or unreadable (never shows the secret)."""
