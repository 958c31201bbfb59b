"""`edge-agent profiles list|show|decode`: the firmware profiles, and what they make of bytes.

`decode` runs a profile's real framer and decoder over bytes given on the command line or in a
file, so a technician can check a capture (or a site's new profile) without a device:

    edge-agent profiles decode mt-sics --text 'S S     100.00 g\\r\\n'
    edge-agent profiles decode toledo-continuous --hex '02 2c 30 20 20 20 31 32 33 34 ...'
    edge-agent profiles decode ./site-scale.toml --file capture.bin

A file written by `edge-agent diag capture` is replayed with the read times kept beside it
(capture.bin.times), so frames that end in an idle gap split as they did on the line.

A profile argument with a `/` or ending in `.toml` is read as a file, anything else is a name
looked up on the profile search path (EDGE_AGENT_PROFILE_PATH, then the packaged profiles).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

# Technicians' terminals: `profiles list` fits one screen width.
LIST_WIDTH = 80


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("profiles", help="list, show and try firmware profiles")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="every profile: name, kind, vendor, summary")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    listing.set_defaults(handler=run_list)

    show = commands.add_parser("show", help="a profile's settings")
    show.add_argument("profile", help="profile name, or a profile file (.toml)")
    show.add_argument("--json", action="store_true", help="the settings as JSON")
    show.set_defaults(handler=run_show)

    decode = commands.add_parser(
        "decode", help="decode bytes with a profile; one JSON object per message"
    )
    decode.add_argument("profile", help="profile name, or a profile file (.toml)")
    source = decode.add_mutually_exclusive_group(required=True)
    source.add_argument("--hex", help="bytes in hex, e.g. '02 2c 30' (spaces and colons ignored)")
    source.add_argument(
        "--text", help=r"text with escapes \r \n \t \\ \0 \xNN, e.g. 'S S   100.00 g\r\n'"
    )
    source.add_argument("--file", help="a file of raw bytes ('-' reads standard input)")
    decode.set_defaults(handler=run_decode)


def resolve_profile(argument: str):
    from edge_agent.devices.profiles import load_profile, load_profile_file

    if argument.endswith(".toml") or "/" in argument:
        return load_profile_file(Path(argument))
    return load_profile(argument)


def run_list(args: argparse.Namespace) -> int:
    from edge_agent.devices.profiles import ProfileError, available_profiles, load_profile

    rows, failed = [], False
    for name in available_profiles():
        try:
            profile = load_profile(name)
        except ProfileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed = True
            continue
        rows.append(
            {
                "name": profile.name,
                "kind": profile.kind,
                "vendor": profile.vendor,
                "summary": profile.summary,
                "source": profile.source,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print("\n".join(list_lines(rows)))
    return EXIT_FAILED if failed else EXIT_OK


def list_lines(rows: list[dict[str, str]], width: int = LIST_WIDTH) -> list[str]:
    """Name, kind and vendor on one line (the vendor cut to fit), the summary wrapped and
    indented under it: every line within `width` columns, nothing of the summary lost."""
    name_width = max([4] + [len(row["name"]) for row in rows])
    kind_width = max([4] + [len(row["kind"]) for row in rows])
    vendor_width = max(6, width - name_width - kind_width - 4)
    lines = [f"{'NAME':{name_width}}  {'KIND':{kind_width}}  VENDOR / summary"]
    for row in rows:
        vendor = row["vendor"]
        if len(vendor) > vendor_width:
            vendor = vendor[: vendor_width - 1] + "…"
        lines.append(f"{row['name']:{name_width}}  {row['kind']:{kind_width}}  {vendor}".rstrip())
        lines += textwrap.wrap(row["summary"], width, initial_indent="    ",
                               subsequent_indent="    ")
    return lines


def _toml_value(value: object) -> str:
    # JSON strings, numbers, booleans and arrays are valid TOML (bytes show as "\r\n", "\u0002").
    return json.dumps(value)


def run_show(args: argparse.Namespace) -> int:
    """The profile's settings, defaults included, written as a TOML profile file would be."""
    profile = resolve_profile(args.profile)
    document = profile.model_dump(mode="json", exclude_none=True)
    if args.json:
        document["source"] = profile.source
        print(json.dumps(document, indent=2))
        return EXIT_OK
    line = profile.line
    print(f"# {profile.name}: {profile.kind} from {profile.source}")
    print(
        f"# line {line.baudrate} {line.bytesize}{line.parity}{line.stopbits:g}, "
        f"flow control {line.flow_control}; framing {profile.framing.mode}; "
        f"polling {profile.polling.mode}; decode {profile.decode.protocol}"
    )
    for key in ("name", "kind", "vendor", "description"):
        print(f"{key} = {_toml_value(document[key])}")
    for section in ("line", "framing", "polling", "decode", "tcp"):
        values = document.get(section)
        if not values and section == "tcp":
            continue  # only a device with a heartbeat or an idle timeout of its own has one
        print(f"\n[{section}]")
        tables = {key: value for key, value in values.items() if isinstance(value, dict)}
        for key, value in values.items():
            if key not in tables:
                print(f"{key} = {_toml_value(value)}")
        for key, table in tables.items():
            print(f"\n[{section}.{key}]")
            for name, value in table.items():
                print(f"{name} = {_toml_value(value)}")
    return EXIT_OK


_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.|$)", re.DOTALL)
_SIMPLE_ESCAPES = {"r": b"\r", "n": b"\n", "t": b"\t", "\\": b"\\", "0": b"\x00"}


def unescape_text(text: str) -> bytes:
    r"""`--text` to bytes: \r \n \t \\ \0 and \xNN (one byte each); other text as UTF-8."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos : match.start()].encode("utf-8")
        code = match.group(1)
        if len(code) == 3:
            out.append(int(code[1:], 16))
        elif code in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[code]
        else:
            raise ValueError(f"unknown escape '\\{code}' (use \\r \\n \\t \\\\ \\0 or \\xNN)")
        pos = match.end()
    out += text[pos:].encode("utf-8")
    return bytes(out)


def _input_bytes(args: argparse.Namespace) -> bytes:
    """The bytes to decode; ValueError with a message naming the option."""
    if args.hex is not None:
        try:
            return bytes.fromhex(re.sub(r"[\s:]", "", args.hex))
        except ValueError:
            raise ValueError(f"--hex: not hexadecimal bytes: {args.hex!r}") from None
    if args.text is not None:
        try:
            return unescape_text(args.text)
        except ValueError as exc:
            raise ValueError(f"--text: {exc}") from None
    if args.file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(args.file).read_bytes()
    except OSError as exc:
        raise ValueError(f"--file: {args.file}: {exc.strerror or exc}") from None


def run_decode(args: argparse.Namespace) -> int:
    from edge_agent.devices.codec import make_codec
    from edge_agent.devices.messages import message_to_dict

    profile = resolve_profile(args.profile)
    try:
        data = _input_bytes(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    from edge_agent.diagnostics.capture import CaptureError, read_capture, replay, times_path

    # A capture from `diag capture` has its read times beside it: replayed with those times,
    # idle-gap frames split where the device paused. Other input is one chunk, ending in a gap.
    times = times_path(Path(args.file)) if args.file not in (None, "-") else None
    try:
        chunks = read_capture(data, times)
    except CaptureError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    codec = make_codec(profile)
    messages = replay(codec, chunks)
    for message in messages:
        print(json.dumps(message_to_dict(message)))
    counters = codec.counters
    print(
        f"{len(messages)} messages from {len(data)} bytes: {counters.frames} frames, "
        f"{counters.decode_errors} decode errors, {counters.garbage_bytes} garbage bytes, "
        f"{counters.overflows} overflows, {codec.buffered} bytes left unframed",
        file=sys.stderr,
    )
    return EXIT_OK
