"""The agent's config file and `edge-agent config check`."""

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.config import load_config
from edge_agent.errors import ConfigError

GOOD = """
site = "HKG1"
line = "L3"
state_dir = "state"

[devices.scanner]
port = "/dev/sortline/scanner"
profile = "generic-scanner"

[devices.scale]
port = "/dev/sortline/scale"
profile = "mt-sics"

[rules]
file = "rules/line3.toml"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_config_is_ok_and_paths_are_relative_to_the_file(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert main(["config", "check", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    config = load_config(path)
    assert config.state_dir == (tmp_path / "state").resolve()
    assert config.rules.file == (tmp_path / "rules/line3.toml").resolve()
    assert config.topic_prefix == "sortline/v1/HKG1/L3/"
    assert config.mqtt_client_id == "edge-agent-HKG1-L3"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD.replace('port = "/dev/sortline/scale"\n', ""), "devices.scale.port: Field required"),
        (GOOD.replace('site = "HKG1"', 'site = "HKG/1"'), "site: String should match pattern"),
        (GOOD + "\n[pairing]\nwindow_ms = -5\n", "pairing.window_ms: Input should be greater"),
        (GOOD + "\n[pairing]\nmode = 'latest'\n", "pairing.mode: Input should be"),
        (GOOD + "\n[mqtt]\nprot = 1883\n", "mqtt.prot: unknown setting (a typo?)"),
        (GOOD.replace('line = "L3"', 'line = "L3"\ntimezone = "Mars/Olympus"'),
         "timezone: Value error, unknown time zone"),
        (GOOD.replace('profile = "mt-sics"', 'profile = "no-such-scale"'),
         "devices.scale.profile:"),
        (GOOD.replace('profile = "mt-sics"', 'profile = "generic-scanner"'),
         "devices: more than one scanner (scale, scanner)"),
        ("site = 'HKG1'\nline = [", "not valid TOML"),
        (GOOD + "\n[sorter]\nmax_outcome_rates = { too_lat = 0.1 }\n",
         "sorter.max_outcome_rates: Value error, unknown outcome 'too_lat'"),
        (GOOD + "\n[sorter]\nmax_outcome_rates = { too_late = 1.5 }\n",
         "sorter.max_outcome_rates: Value error, too_late: limit 1.5 is not a share"),
        (GOOD + "\n[sorter]\noutcome_window_parcels = 20\noutcome_min_parcels = 50\n",
         "sorter: Value error, outcome_min_parcels is larger than outcome_window_parcels"),
        (GOOD + "\n[sorter]\nconfirm_timeout_ms = 0\n", "sorter.confirm_timeout_ms: Input"),
    ],
)
def test_each_problem_is_named_with_its_place(tmp_path, capsys, text, problem):
    path = write(tmp_path, text)
    assert main(["config", "check", str(path), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert any(problem in line for line in report["problems"]), report["problems"]


def test_every_problem_at_once(tmp_path, capsys):
    path = write(tmp_path, "site = 'x y'\n[devices.scale]\nprofile = 'mt-sics'\n")
    assert main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    places = {line.split(": ")[1] for line in lines}
    assert {"site", "line", "devices.scale.port"} <= places


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")
    assert caught.value.problems == ["file not found"]


def test_run_refuses_a_bad_config_with_exit_2(tmp_path, capsys):
    path = write(tmp_path, GOOD.replace('line = "L3"', ""))
    assert main(["run", "--config", str(path)]) == 2
    assert "line: Field required" in capsys.readouterr().err


def test_status_socket_lives_in_systemds_runtime_directory(tmp_path, monkeypatch):
    config = load_config(write(tmp_path, GOOD))
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    assert config.status_socket == config.state_dir / "status.sock"
    monkeypatch.setenv("RUNTIME_DIRECTORY", "/run/edge-agent")
    assert config.status_socket == Path("/run/edge-agent/status.sock")


def test_the_example_config_is_valid_and_names_every_setting(tmp_path):
    """`edge-agent config example`: a file that checks OK and shows every setting of every
    section (commented or not), so a new setting cannot be added without documenting it."""
    import re

    from pydantic import BaseModel

    from edge_agent.cli.config_cmd import example_text
    from edge_agent.config import AgentConfig, load_config

    text = example_text()
    path = tmp_path / "agent.toml"
    path.write_text(text)
    assert load_config(path).site == "HKG1"

    sections: dict[str, set[str]] = {"": set()}
    current = ""
    for line in text.splitlines():
        header = re.match(r"#? ?\[([a-z_.]+)\]", line)
        if header:
            current = header.group(1)
            sections.setdefault(current, set())
            continue
        key = re.match(r"#? ?([a-z_]+) = ", line)
        if key:
            sections[current].add(key.group(1))

    def expect(model: type[BaseModel], section: str) -> None:
        for name, field in model.model_fields.items():
            nested = field.annotation
            args = getattr(nested, "__args__", ())
            candidates = [nested, *args]
            sub = next((c for c in candidates if isinstance(c, type)
                        and issubclass(c, BaseModel)), None)
            where = f"{section}.{name}" if section else name
            if name == "devices":
                continue  # a table per device, checked below
            if sub is not None:
                assert where in sections, f"[{where}] missing from the example"
                expect(sub, where)
            else:
                assert name in sections[section], f"{where} missing from the example"

    expect(AgentConfig, "")
    from edge_agent.config import DeviceConfig

    for name in DeviceConfig.model_fields:
        assert name in sections["devices.scanner"], f"devices.*.{name} missing"


def test_a_config_that_is_not_utf8_names_the_line(tmp_path):
    from edge_agent.config import load_config
    from edge_agent.errors import ConfigError

    path = tmp_path / "agent.toml"
    path.write_bytes(b'site = "HKG1"\nline = "L3"\n# caf\xe9 au lait\n')
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.problems == ["line 3: not UTF-8 text (invalid continuation byte)"]
