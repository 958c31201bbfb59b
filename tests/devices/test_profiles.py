"""Profile loading: the shipped profiles, the search path, bad files, and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.devices.codec import make_codec
from edge_agent.devices.profiles import (
    PROFILE_PATH_ENV,
    ProfileError,
    available_profiles,
    load_profile,
    load_profile_file,
)

SHIPPED = {
    "mt-sics": "scale",
    "mt-sics-continuous": "scale",
    "toledo-continuous": "scale",
    "nci-scp01": "scale",
    "sma-scp0499": "scale",
    "and-standard": "scale",
    "generic-scanner": "scanner",
    "zebra-ds": "scanner",
    "honeywell-serial-trigger": "scanner",
    "keyence-fixed": "scanner",
    "generic-dws": "dws",
    "cubiscan-style": "dws",
    "generic-divert": "sorter",
    "sorter-host-json": "sorter",
}

GOOD = """\
name = "{name}"
kind = "scale"
vendor = "Test"
description = "A test scale."

[line]
baudrate = 4800

[framing]
mode = "terminator"
terminators = ["\\r\\n"]

[polling]
mode = "poll"
period_ms = 100
request = "SI\\r\\n"

[decode]
protocol = "mt-sics"
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _no_site_profiles(monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


def test_every_shipped_profile_loads_with_its_kind():
    assert set(SHIPPED) <= set(available_profiles())
    for name, kind in SHIPPED.items():
        profile = load_profile(name)
        assert (profile.name, profile.kind) == (name, kind)
        assert profile.source.endswith(f"{name}.toml")
        make_codec(profile)  # and every one builds a codec


def test_serial_kwargs_are_pyserials():
    kwargs = load_profile("nci-scp01").serial_kwargs()
    assert kwargs == {
        "baudrate": 9600,
        "bytesize": 7,
        "parity": "E",
        "stopbits": 1,
        "xonxoff": False,
        "rtscts": False,
        "dsrdtr": False,
    }
    assert load_profile("nci-scp01").serial_kwargs(baudrate=19200)["baudrate"] == 19200


def test_outgoing_bytes_come_from_the_profile():
    mt = make_codec(load_profile("mt-sics"))
    assert mt.poll_request() == b"SI\r\n"
    assert mt.stable_weight_request() == b"S\r\n"
    assert mt.command("zero") == b"Z\r\n"
    assert mt.command("tare") == b"T\r\n"
    with pytest.raises(ProfileError, match="trigger_on"):
        mt.command("trigger_on")
    sir = make_codec(load_profile("mt-sics-continuous"))
    assert sir.poll_request() is None
    assert (sir.startup_commands(), sir.shutdown_commands()) == ([b"SIR\r\n"], [b"C\r\n"])
    sma = make_codec(load_profile("sma-scp0499"))
    assert (sma.poll_request(), sma.stable_weight_request()) == (b"\nW\r", b"\nP\r")
    honeywell = make_codec(load_profile("honeywell-serial-trigger"))
    assert honeywell.startup_commands() == [b"\x16T\r"]
    assert honeywell.shutdown_commands() == [b"\x16U\r"]
    assert honeywell.command("trigger_off") == b"\x16U\r"
    keyence = make_codec(load_profile("keyence-fixed"))
    assert (keyence.command("trigger_on"), keyence.command("trigger_off")) == (b"LON\r", b"LOFF\r")
    assert make_codec(load_profile("toledo-continuous")).poll_request() is None


def test_lane_command_only_for_the_sorter():
    sorter = make_codec(load_profile("generic-divert"))
    assert sorter.lane_command("0190f3a2b4c57d8e9f0a1b2c3d4e5f60", 3) == (
        b"DIV 0190f3a2b4c57d8e9f0a1b2c3d4e5f60 3\r\n"
    )
    with pytest.raises(ValueError):
        sorter.lane_command("has space", 3)
    with pytest.raises(ValueError):
        sorter.lane_command("p1", 100)
    with pytest.raises(ProfileError, match="lane"):
        make_codec(load_profile("mt-sics")).lane_command("p1", 3)


def test_a_site_directory_on_the_path_adds_and_overrides(tmp_path, monkeypatch):
    site, other = tmp_path / "site", tmp_path / "other"
    site.mkdir()
    other.mkdir()
    write(site, "mt-sics", GOOD.format(name="mt-sics"))
    write(other, "site-scale", GOOD.format(name="site-scale"))
    monkeypatch.setenv(PROFILE_PATH_ENV, f"{site}:{tmp_path / 'missing'}:{other}")
    assert load_profile("mt-sics").line.baudrate == 4800  # the site's copy wins
    assert load_profile("mt-sics").source == str(site / "mt-sics.toml")
    assert load_profile("site-scale").kind == "scale"
    assert {"site-scale", "zebra-ds"} <= set(available_profiles())
    assert load_profile("zebra-ds").kind == "scanner"  # packaged ones still found


def test_explicit_search_path(tmp_path):
    write(tmp_path, "only-here", GOOD.format(name="only-here"))
    assert available_profiles([tmp_path]) == ["only-here"]
    assert load_profile("only-here", [tmp_path]).name == "only-here"
    with pytest.raises(ProfileError, match="unknown firmware profile"):
        load_profile("mt-sics", [tmp_path])


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError) as caught:
        load_profile("no-such-scale")
    assert "'no-such-scale'" in str(caught.value)
    assert "mt-sics" in str(caught.value)


@pytest.mark.parametrize("name", ["../etc/passwd", "Upper", "a/b", "", ".hidden"])
def test_names_that_are_not_file_names_are_refused(name):
    with pytest.raises(ProfileError, match="not a profile name"):
        load_profile(name)


def problems_of(tmp_path: Path, text: str, name: str = "bad") -> ProfileError:
    path = write(tmp_path, name, text)
    with pytest.raises(ProfileError) as caught:
        load_profile_file(path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)
    return caught.value


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("kind = \"scale\"\n", ""), "kind: missing"),
        (("baudrate = 4800", "baudrate = \"fast\""), "line.baudrate: "),
        (("baudrate = 4800", "baud = 4800"), "line.baud: unknown setting"),
        (("terminators = ", "terminatorz = "), "framing.terminatorz: unknown setting"),
        (("terminators = [\"\\r\\n\"]", "terminators = []"), "framing.terminators: "),
        (("mode = \"terminator\"", "mode = \"magic\""), "framing.mode: unknown value 'magic'"),
        (("[framing]\nmode = \"terminator\"\n", "[framing]\n"), "framing.mode: missing"),
        (("protocol = \"mt-sics\"", "protocol = \"morse\""), "decode.protocol: unknown value"),
        (("request = \"SI\\r\\n\"", "request = \"SI\\u20ac\""), "polling.request: may hold only"),
        (("period_ms = 100\n", ""), "polling: mode \"poll\" needs both"),
        (("[decode]", "[decode]\nchecksum = true"), "decode.checksum: unknown setting"),
        (("baudrate = 4800", "baudrate = 4800\nparity = \"X\""), "line.parity: "),
        (("terminators = [\"\\r\\n\"]", "terminators = [\"\\r\", \"\\r\\n\"]"), "is the start of"),
        (("kind = \"scale\"", "kind = \"scanner\""), "is for a scale, but kind is 'scanner'"),
        (("[line]", "line = 5\n[other]"), "line: "),
    ],
)
def test_bad_profiles_name_the_file_and_field(tmp_path, change, problem):
    old, new = change
    text = GOOD.format(name="bad")
    assert old in text
    error = problems_of(tmp_path, text.replace(old, new))
    assert problem in str(error), str(error)


def test_bad_toml_names_the_file_and_line(tmp_path):
    error = problems_of(tmp_path, 'name = "bad"\nkind = \n')
    assert "not valid TOML" in str(error)
    assert "line 2" in str(error)


def test_name_must_match_the_file_name(tmp_path):
    error = problems_of(tmp_path, GOOD.format(name="other"))
    assert "name: 'other' differs from the file name 'bad'" in str(error)


def test_unreadable_files(tmp_path):
    with pytest.raises(ProfileError, match="file not found"):
        load_profile_file(tmp_path / "nope.toml")
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ProfileError, match="directory"):
        load_profile_file(tmp_path / "dir.toml")
    (tmp_path / "latin.toml").write_bytes(b'name = "\xff"\n')
    with pytest.raises(ProfileError, match="not UTF-8"):
        load_profile_file(tmp_path / "latin.toml")


def test_toledo_checksum_setting_must_match_the_framing(tmp_path):
    text = (Path(load_profile("toledo-continuous").source)).read_text()
    text = text.replace('name = "toledo-continuous"', 'name = "toledo-nochk"')
    no_checksum = text.replace("checksum = true", "checksum = false")
    error = problems_of(tmp_path, no_checksum, "toledo-nochk")
    assert "trailer_length = 0" in str(error)
    fixed = text.replace("checksum = true", "checksum = false").replace(
        "trailer_length = 1", "trailer_length = 0"
    )
    profile = load_profile_file(write(tmp_path, "toledo-nochk", fixed))
    codec = make_codec(profile)
    (weight,) = codec.feed(bytes.fromhex("022c30202020313233342020202020300d"), 0)
    assert (weight.value_kg, weight.stable) == (12.34, True)


@pytest.mark.parametrize(("change", "problem"), [
    (("header_length = 12", "header_length = 14"), "header_length = 12, length_offset = 8"),
    (("length_offset = 8", "length_offset = 0"), "length_offset falls inside the start marker"),
    (("max_length = 4096", "max_length = 12"), "max_length leaves no room for a body"),
    (('mode = "length_header"', 'mode = "terminator"\nterminators = ["\\n"]'),
     "unknown setting"),
    (('protocol = "sorter-host"', 'protocol = "generic-divert"'), "unknown setting"),
])
def test_a_sorter_host_profile_must_describe_its_header(tmp_path, change, problem):
    text = Path(load_profile("sorter-host-json").source).read_text()
    text = text.replace('name = "sorter-host-json"', 'name = "site-sorter"')
    error = problems_of(tmp_path, text.replace(*change), "site-sorter")
    assert problem in str(error)


def test_a_sorter_driven_profile_takes_no_lane_commands():
    codec = make_codec(load_profile("sorter-host-json"))
    assert codec.sorter_driven
    with pytest.raises(ProfileError, match="asks, it takes no lane commands"):
        codec.lane_command("p1", 3)
    with pytest.raises(ProfileError, match="not a sorter-host profile"):
        make_codec(load_profile("generic-divert")).host_message(1, 1)


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.format(name="bad").replace("baudrate = 4800", "baudrate = -1\nspeed = 2")
    error = problems_of(tmp_path, text)
    assert len(error.problems) == 2


def write_config(tmp_path: Path, profile: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'site = "hk1"\nline = "l1"\nstate_dir = "state"\n\n'
        f'[devices.scale]\nport = "/dev/ttyUSB0"\nprofile = "{profile}"\n'
    )
    return path


def test_config_check_names_the_device_of_an_unknown_profile(tmp_path, capsys):
    path = write_config(tmp_path, "no-such-scale")
    assert main(["config", "check", str(path)]) == 2
    out = capsys.readouterr().out
    assert "devices.scale.profile: 'no-such-scale': unknown firmware profile" in out


def test_config_check_accepts_a_known_profile(tmp_path, capsys):
    path = write_config(tmp_path, "mt-sics")
    assert main(["config", "check", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
