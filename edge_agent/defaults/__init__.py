"""Embedded defaults: the default rule set and the demo's agent configuration."""
