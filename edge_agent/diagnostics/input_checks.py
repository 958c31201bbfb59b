"""`doctor`'s checks of the inputs the decisions rest on: pairing, input health, the clock.

They read what the running agent reports on its status socket (counts since it started); with
no agent running they can only say what the settings allow.
"""

from __future__ import annotations

from typing import Any

from edge_agent.config import AgentConfig
from edge_agent.diagnostics.results import CheckResult, failed, passed, warned

CALIBRATE = "measure the line and apply what it proposes: edge-agent diag pairing"


def check_inputs(config: AgentConfig, status: dict[str, Any] | None) -> list[CheckResult]:
    if not isinstance(status, dict) or "pairing" not in status:
        return [_separation_allowed(config)]
    return [_pairing(config, status["pairing"]), *_health(status.get("input_health") or {}),
            _agent_clock(status.get("clock") or {})]


def _separation_allowed(config: AgentConfig) -> CheckResult:
    pairing = config.pairing
    if pairing.mode != "window":
        return passed("pairing", f"{pairing.mode}: one request to the scale at a time "
                                 f"(reply within {pairing.poll_timeout_ms} ms)")
    closest = 2 * pairing.window_ms
    return passed("pairing", f"readings expected {pairing.offset_ms:+d} ms ± {pairing.window_ms} "
                             f"ms from the scan: parcels under {closest} ms apart cannot be told "
                             f"apart (agent not running: no traffic seen)")


def _pairing(config: AgentConfig, seen: dict[str, Any]) -> CheckResult:
    paired = int(seen.get("paired", 0))
    ambiguous = int(seen.get("ambiguous", 0))
    too_close = int(seen.get("scans_too_close", 0))
    detail = f"{paired} parcels paired, {ambiguous} ambiguous"
    if too_close:
        return warned("pairing", f"{detail}; {too_close} scans came closer than "
                                 f"{2 * config.pairing.window_ms} ms apart: their weights were "
                                 "refused (weight_ambiguous)", CALIBRATE)
    if ambiguous:
        return warned("pairing", detail, CALIBRATE)
    return passed("pairing", detail)


def _health(health: dict[str, Any]) -> list[CheckResult]:
    results = []
    active = set(health.get("alarms_active") or ())
    for name, measure in sorted(health.items()):
        if not isinstance(measure, dict):
            continue
        detail = (f"{measure.get('value', 0):.3f} over the last {measure.get('parcels', 0)} "
                  f"parcels (limit {measure.get('limit')})")
        if name in active:
            results.append(warned(name.replace("_", " "), detail, _ADVICE.get(name, "")))
        else:
            results.append(passed(name.replace("_", " "), detail))
    return results


def _agent_clock(clock: dict[str, Any]) -> CheckResult:
    name = "clock as the agent sees it"
    if clock.get("synchronised") is False:
        return failed(name, f"not synchronised ({clock.get('source')}): time rules take their "
                            "safe branch (after the cutoff)",
                      "timedatectl set-ntp true; check the NTP server is reachable")
    if clock.get("synchronised") is None:
        return warned(name, "unknown (the kernel cannot be asked)",
                      "set [clock] source = \"flag-file\" if systemd-timesyncd runs")
    return passed(name, f"synchronised ({clock.get('source')})")


_ADVICE = {
    "scanner_no_read_rate": "clean the scanner window; check labels and the read range",
    "scale_unsettled_rate": "check the scale for vibration, draughts and parcels touching "
                            "the frame; check its filter setting",
    "pairing_ambiguous_rate": CALIBRATE,
    "scale_bias_fraction": "zero the scale with the platter empty (edge-agent diag scale "
                           "--zero); if the bias stays, have the scale calibrated",
}
