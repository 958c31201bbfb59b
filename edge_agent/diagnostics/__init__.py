"""Checks and probes behind the technicians' toolkit: `edge-agent doctor` and `diag ...`."""
