"""Protocol peers over pseudo-terminals: scales, scanners, DWS units and a sorter for tests and
demos."""

from edge_agent.devices.simulators.dws import DWS_PROFILES, DwsSimulator
from edge_agent.devices.simulators.pty_peer import PtyPeer
from edge_agent.devices.simulators.scale import SCALE_PROFILES, ScaleSimulator
from edge_agent.devices.simulators.scanner import SCANNER_STYLES, ScannerSimulator
from edge_agent.devices.simulators.sorter import LaneCommand, SorterSimulator

__all__ = [
    "DWS_PROFILES",
    "SCALE_PROFILES",
    "SCANNER_STYLES",
    "DwsSimulator",
    "LaneCommand",
    "PtyPeer",
    "ScaleSimulator",
    "ScannerSimulator",
    "SorterSimulator",
]
