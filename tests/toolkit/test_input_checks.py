"""`doctor`'s input checks read what the running agent reports: pairing, health, clock."""

from edge_agent.config import parse_config
from edge_agent.diagnostics.input_checks import check_inputs
from edge_agent.diagnostics.results import Status

CONFIG = parse_config({"site": "S", "line": "L", "pairing": {"window_ms": 60}})
HEALTHY = {
    "pairing": {"mode": "window", "paired": 500, "ambiguous": 0, "scans_too_close": 0},
    "input_health": {"scanner_no_read_rate": {"value": 0.01, "limit": 0.05, "parcels": 200},
                     "alarms_active": []},
    "clock": {"synchronised": True, "source": "kernel"},
}


def by_name(results):
    return {r.name: r for r in results}


def test_a_healthy_agent_passes_every_input_check():
    results = check_inputs(CONFIG, HEALTHY)
    assert {r.status for r in results} == {Status.PASS}
    assert by_name(results)["pairing"].detail == "500 parcels paired, 0 ambiguous"


def test_traffic_too_close_warns_with_the_calibration_command():
    status = {**HEALTHY, "pairing": {**HEALTHY["pairing"], "ambiguous": 8, "scans_too_close": 4}}
    pairing = by_name(check_inputs(CONFIG, status))["pairing"]
    assert pairing.status == Status.WARN
    assert "120 ms" in pairing.detail and "diag pairing" in pairing.advice


def test_an_active_health_alarm_warns_with_its_advice():
    health = {"scale_bias_fraction": {"value": 0.05, "limit": 0.03, "parcels": 80},
              "alarms_active": ["scale_bias_fraction"]}
    result = by_name(check_inputs(CONFIG, {**HEALTHY, "input_health": health}))[
        "scale bias fraction"]
    assert result.status == Status.WARN and "--zero" in result.advice


def test_an_unsynchronised_clock_fails():
    clock = {"synchronised": False, "source": "kernel"}
    result = by_name(check_inputs(CONFIG, {**HEALTHY, "clock": clock}))[
        "clock as the agent sees it"]
    assert result.status == Status.FAIL and "safe branch" in result.detail


def test_with_no_agent_the_settings_say_what_they_can_separate():
    [result] = check_inputs(CONFIG, None)
    assert result.status == Status.PASS and "under 120 ms apart" in result.detail
