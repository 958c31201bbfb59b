"""Any text given as a device's network address: an endpoint, None (a serial path) or a
ValueError naming the problem; never another exception, never an endpoint that is not one."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.devices.tcp_endpoint import endpoint_problems, parse_endpoint

SCHEMES = st.sampled_from(["tcp://", "tcp-listen://", "", "tcp:/", "TCP://"])
HOSTS = st.one_of(st.ip_addresses().map(str), st.text(max_size=20))
PORTS = st.one_of(st.integers(-5, 70_000).map(str), st.text(max_size=6))


@given(SCHEMES, HOSTS, PORTS)
def test_any_address_text_parses_or_is_refused_with_a_reason(scheme: str, host: str,
                                                             port: str) -> None:
    shown = f"[{host}]" if ":" in host else host
    text = f"{scheme}{shown}:{port}"
    try:
        endpoint = parse_endpoint(text)
    except ValueError as exc:
        assert str(exc).startswith(repr(text)[:20])  # names what was given
        return
    if endpoint is None:
        assert not text.startswith(("tcp://", "tcp-listen://"))
        return
    ipaddress.ip_address(endpoint.host)
    assert 0 < endpoint.port < 65536
    assert endpoint.role == ("server" if text.startswith("tcp-listen://") else "client")
    assert parse_endpoint(endpoint.url) == endpoint  # what is shown reads back the same


@given(st.one_of(st.none(), st.text(max_size=10), st.integers(), st.booleans()),
       st.one_of(st.none(), st.integers(-10, 70_000), st.text(max_size=5), st.booleans()))
def test_config_values_of_any_type_give_problems_not_crashes(host: object, port: object) -> None:
    problems = endpoint_problems(host, port, "client")
    assert all(problem.startswith(("host: ", "port: ")) for problem in problems)
