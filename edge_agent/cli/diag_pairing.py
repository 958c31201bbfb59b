"""`edge-agent diag pairing`: measure where a line's readings come, and propose [pairing].

From two captures recorded at the same time (`diag capture`, one for the scanner, one for the
scale), or from the live ports for a while (the agent stopped: it holds them), it measures each
parcel's scan-to-reading offset and the gaps between parcels, and proposes `offset_ms` and
`window_ms` (edge_agent.sorting.pairing_calibration says how):

    edge-agent diag pairing --config /etc/edge-agent/agent.toml --live 120
    edge-agent diag pairing --config /etc/edge-agent/agent.toml \\
        --scanner-capture scanner.bin --scale-capture scale.bin

Exit codes: 0 settings proposed, 1 too few parcels to propose (it says how many it needs),
2 bad input (a missing file, a profile of the wrong kind, a capture without scans).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_agent.errors import EdgeAgentError
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK
from edge_agent.units import NS_PER_MS

# Live: opening a pty or a USB adapter takes milliseconds; a port still closed after this is
# not going to open.
OPEN_WAIT_S = 1.0
HUB_STEP_S = 0.05
# Scans without a reading listed by name, at most (the count says the rest).
SHOWN_UNMATCHED = 5
HISTOGRAM_BAR = 40
WIDTH = 80


def add_pairing_parser(commands: argparse._SubParsersAction) -> None:
    from edge_agent.sorting.pairing_calibration import DEFAULT_MAX_OFFSET_MS

    pairing = commands.add_parser(
        "pairing", help="measure scan-to-reading offsets and gaps; propose [pairing] settings")
    pairing.add_argument("--config", type=Path, metavar="FILE",
                         help="the agent's config: its scanner and scale (ports, profiles) "
                              "and [pairing] settings")
    pairing.add_argument("--scanner-capture", type=Path, metavar="FILE",
                         help="the scanner's capture (diag capture --out FILE)")
    pairing.add_argument("--scale-capture", type=Path, metavar="FILE",
                         help="the scale's capture, recorded at the same time")
    pairing.add_argument("--live", type=float, metavar="SECONDS",
                         help="measure live traffic for this long instead (agent stopped)")
    pairing.add_argument("--parcels", type=int, metavar="N",
                         help="live: stop once N parcels were scanned (and their readings in)")
    pairing.add_argument("--scanner-port", metavar="PATH", help="live: the scanner's port")
    pairing.add_argument("--scale-port", metavar="PATH", help="live: the scale's port")
    pairing.add_argument("--scanner-profile", metavar="NAME",
                         help="the scanner's firmware profile (default: from --config)")
    pairing.add_argument("--scale-profile", metavar="NAME",
                         help="the scale's firmware profile (default: from --config)")
    pairing.add_argument("--max-offset-ms", type=float, default=DEFAULT_MAX_OFFSET_MS,
                         metavar="MS", help="look for a parcel's reading this far from its "
                                            f"scan (default {DEFAULT_MAX_OFFSET_MS})")
    pairing.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    pairing.set_defaults(handler=run_pairing)


@dataclass
class Device:
    """One side of the measurement: where its bytes come from and how to decode them."""

    role: str  # "scanner" or "scale"
    profile: Any  # edge_agent.devices.profiles.Profile
    port: str | None = None
    baudrate: int | None = None
    capture: Path | None = None


@dataclass
class Traffic:
    scans: list[tuple[int, str | None]] = field(default_factory=list)  # (ns, barcode|None)
    weights: list[Any] = field(default_factory=list)  # edge_agent.devices.messages.Weight
    # How late each stamp may be, live (the hub's stamp_error_ns); a capture cannot say.
    scan_errors_ns: dict[int, int] = field(default_factory=dict)
    weight_errors_ns: list[int] = field(default_factory=list)
    undecodable: dict[str, int] = field(default_factory=lambda: {"scanner": 0, "scale": 0})
    source: str = ""


def run_pairing(args: argparse.Namespace) -> int:
    from edge_agent.config import PairingConfig, load_config
    from edge_agent.sorting import pairing_calibration as cal

    config = load_config(args.config) if args.config is not None else None
    settings = config.pairing if config is not None else PairingConfig()
    live = args.live is not None
    if live == bool(args.scanner_capture or args.scale_capture):
        raise EdgeAgentError("diag pairing: give --scanner-capture and --scale-capture, or "
                             "--live SECONDS")
    if not live and not (args.scanner_capture and args.scale_capture):
        raise EdgeAgentError("diag pairing: both --scanner-capture and --scale-capture are "
                             "needed (recorded at the same time)")
    for option, value in (("--live", args.live), ("--parcels", args.parcels),
                          ("--max-offset-ms", args.max_offset_ms)):
        if value is not None and value <= 0:
            raise EdgeAgentError(f"diag pairing: {option} must be above 0 (got {value:g})")
    scanner = _device(args, config, "scanner")
    scale = _device(args, config, "scale")
    traffic = _read_live(args, scanner, scale) if live else _read_captures(scanner, scale)
    if not live and not traffic.scans:
        raise EdgeAgentError(_nothing_in(scanner, "scans", traffic.undecodable["scanner"]))

    episodes = cal.platter_episodes(traffic.weights, min_weight_kg=settings.min_weight_kg,
                                    settle_gap_ms=settings.settle_gap_ms,
                                    errors_ns=traffic.weight_errors_ns)
    settled = [e for e in episodes if e.value_kg is not None]
    if not live and not settled:
        raise EdgeAgentError(_nothing_in(scale, "settled readings", traffic.undecodable["scale"]))
    scans = cal.parcel_scans(traffic.scans, settings.debounce_ms)
    result = cal.calibrate(
        scans, [e.received_ns for e in settled],
        scan_errors_ns=[traffic.scan_errors_ns.get(stamp, 0) for stamp in scans],
        reading_errors_ns=[e.received_ns - e.earliest_ns for e in settled],
        max_offset_ms=args.max_offset_ms, base=settings)
    report = _report(result, traffic, episodes, scans, settings)
    if report["proposal"] is not None:
        report["proposal"]["warnings"] += _notes(settings, scale)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(_human(report)))
    return EXIT_OK if result.proposal is not None else EXIT_FAILED


# -- inputs ------------------------------------------------------------------------------------
def _device(args: argparse.Namespace, config: Any, role: str) -> Device:
    from edge_agent.devices.profiles import load_profile

    profile_name = getattr(args, f"{role}_profile")
    named_by = f"--{role}-profile"
    port = getattr(args, f"{role}_port")
    baudrate = None
    if config is not None and (profile_name is None or (args.live is not None and port is None)):
        # The agent tells its devices' roles by their profiles' kinds: so does this.
        named = [(name, device) for name, device in config.devices.items()
                 if load_profile(device.profile).kind == role]
        if len(named) != 1:
            found = ", ".join(name for name, _ in named) or "none"
            raise EdgeAgentError(f"{args.config}: need exactly one {role} device "
                                 f"to measure (found: {found}); name it with --{role}-port and "
                                 f"--{role}-profile")
        name, device = named[0]
        if profile_name is None:
            profile_name, named_by = device.profile, f"devices.{name}.profile"
        from edge_agent.devices.ports import device_location

        port = port or device_location(device)
        baudrate = device.baudrate
    if profile_name is None:
        raise EdgeAgentError(f"diag pairing: name the {role}'s profile with --{role}-profile, "
                             "or give --config FILE")
    profile = load_profile(profile_name)
    if profile.kind != role:
        raise EdgeAgentError(f"{named_by} {profile.name}: a {profile.kind} profile, not "
                             f"a {role}'s (edge-agent profiles list shows each one's kind)")
    if args.live is not None and port is None:
        raise EdgeAgentError(f"diag pairing --live: name the {role}'s port with --{role}-port, "
                             "or give --config FILE")
    capture = getattr(args, f"{role}_capture")
    return Device(role, profile, port, baudrate, capture)


def _read_captures(scanner: Device, scale: Device) -> Traffic:
    from edge_agent.devices.codec import make_codec
    from edge_agent.diagnostics.capture import (
        CaptureError,
        capture_start_ns,
        read_capture,
        replay,
        times_path,
    )

    traffic = Traffic(source="captures")
    for device in (scanner, scale):
        path = device.capture
        assert path is not None
        option = f"--{device.role}-capture {path}"
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise EdgeAgentError(f"{option}: {exc.strerror or exc}") from None
        if not data:
            continue  # nothing was read: said below as "no scans" or "no settled readings"
        times = times_path(path)
        start_ns = capture_start_ns(times)
        if start_ns is None:
            raise EdgeAgentError(
                f"{option}: {times.name} is missing or has no start time, so its reads "
                "cannot be put on one time line with the other port's: record both ports at "
                "the same time with `edge-agent diag capture`")
        try:
            chunks = read_capture(data, times)
        except CaptureError as exc:
            raise EdgeAgentError(str(exc)) from None
        # Both captures' times on the one monotonic clock they were read with.
        messages = replay(make_codec(device.profile), [(start_ns + t, c) for t, c in chunks])
        _collect(traffic, device.role, messages)
    return traffic


def _read_live(args: argparse.Namespace, scanner: Device, scale: Device) -> Traffic:
    """Both ports through one selector, as the agent reads them, so the stamps are the ones
    the agent's pairing would see."""
    from edge_agent.cli.diag_device import open_failure_text
    from edge_agent.devices.hub import DeviceHub
    from edge_agent.devices.ports import port_for_location

    traffic = Traffic(source="live")
    hub = DeviceHub()
    try:
        for device in (scanner, scale):
            try:
                port = port_for_location(device.role, device.port or "", device.profile,
                                         baudrate=device.baudrate)
            except ValueError as exc:
                raise EdgeAgentError(str(exc)) from None
            hub.add(port)
        deadline = time.monotonic() + OPEN_WAIT_S
        while not all(p.connected for p in hub.ports.values()) and time.monotonic() < deadline:
            hub.poll(HUB_STEP_S)
        for port in hub.ports.values():
            if not port.connected:
                raise EdgeAgentError(open_failure_text(port.path, port.last_error))
        if not args.json:
            limit = f" or {args.parcels} parcels" if args.parcels else ""
            print(f"measuring for {args.live:g} s{limit}: run parcels through (Ctrl-C ends it)",
                  flush=True)
        end = time.monotonic() + args.live
        # A stop on --parcels waits for the last parcel's reading too.
        settle_ns = int(args.max_offset_ms * NS_PER_MS)
        try:
            while time.monotonic() < end:
                batch = hub.poll(HUB_STEP_S)
                for role in ("scanner", "scale"):
                    _collect(traffic, role, [m for name, m in batch if name == role],
                             hub.stamp_error_ns)
                if args.parcels and len(traffic.scans) >= args.parcels \
                        and hub.clock() > traffic.scans[-1][0] + settle_ns:
                    break
        except KeyboardInterrupt:
            pass  # Ctrl-C ends the measurement: analyse what was read
    finally:
        hub.close()
    return traffic


def _collect(traffic: Traffic, role: str, messages: list[Any], stamp_error_ns: int = 0) -> None:
    for message in messages:
        if message.kind == "error":
            traffic.undecodable[role] += 1
        elif role == "scanner" and message.kind == "scan":
            traffic.scans.append((message.received_ns, None if message.no_read else message.data))
            traffic.scan_errors_ns[message.received_ns] = stamp_error_ns
        elif role == "scale" and message.kind == "weight":
            traffic.weights.append(message)
            traffic.weight_errors_ns.append(stamp_error_ns)


def _notes(settings: Any, scale: Device) -> list[str]:
    """What the technician should know about how these settings will be used."""
    notes = []
    if settings.mode != "window":
        notes.append(f'the config pairs in mode "{settings.mode}": these settings are for '
                     'mode "window", which the snippet sets')
    polling = scale.profile.polling
    if polling.mode == "poll" and polling.period_ms:
        notes.append(f"the scale ({scale.profile.name}) answers polls every "
                     f"{polling.period_ms} ms: a parcel is seen settled only at the next "
                     "poll, and the window includes that")
    return notes


def _nothing_in(device: Device, what: str, undecodable: int) -> str:
    why = (f"{undecodable} frames did not decode with profile {device.profile.name}: is it "
           "the right profile (and baud rate)?" if undecodable else
           f"is it the {device.role}'s port, and did parcels pass while it was recorded?")
    return f"--{device.role}-capture {device.capture}: no {what}; {why}"


# -- output ------------------------------------------------------------------------------------
def _report(result: Any, traffic: Traffic, episodes: list[Any], scans_ns: list[int],
            settings: Any) -> dict[str, Any]:
    from edge_agent.sorting.pairing_calibration import MIN_PARCELS, histogram

    barcodes = dict(traffic.scans)
    start = scans_ns[0] if scans_ns else 0
    unmatched = [{"at_s": round((scans_ns[i] - start) / 1e9, 3),
                  "barcode": barcodes.get(scans_ns[i])} for i in result.unmatched]
    report: dict[str, Any] = {
        "source": traffic.source,
        "parcels_scanned": result.scans,
        "scale": {
            "episodes": len(episodes),
            "settled": sum(e.value_kg is not None for e in episodes),
            "never_settled": sum(e.value_kg is None and not e.overload for e in episodes),
            "overload": sum(e.overload for e in episodes),
        },
        "undecodable_frames": traffic.undecodable,
        "offsets_ms": {"count": len(result.offsets_ms), **result.offset_percentiles()},
        "histogram": [{"from_ms": low, "to_ms": high, "count": count}
                      for low, high, count in histogram(result.offsets_ms)],
        "gaps_ms": {"count": len(result.gaps_ms), **result.gap_percentiles()},
        "no_reading_nearby": {"count": len(result.unmatched),
                              "share": round(result.no_reading_share, 4),
                              "scans": unmatched},
        # Parcels left out because the measuring host read their bytes late.
        "read_late": len(result.blurred),
        "current": {"offset_ms": settings.offset_ms, "window_ms": settings.window_ms},
        "parcels_needed": MIN_PARCELS,
        "proposal": None,
    }
    proposal = result.proposal
    if proposal is not None:
        shortest = proposal.shortest_gap_ms
        report["proposal"] = {
            "offset_ms": proposal.offset_ms, "window_ms": proposal.window_ms,
            "jitter_ms": round(proposal.jitter_ms, 1),
            "shortest_gap_ms": None if shortest is None else round(shortest, 1),
            "separable": proposal.separable, "gaps_too_close": proposal.gaps_too_close,
            "warnings": proposal.warnings,
            "toml": proposal.toml(),
        }
    return report


def _human(report: dict[str, Any]) -> list[str]:
    """The report for a technician's terminal: at most 80 columns, device text escaped (error
    messages are escaped by the CLI's main)."""
    import textwrap

    from edge_agent.safe_text import terminal_safe

    scale = report["scale"]
    lines = [f"parcels scanned: {report['parcels_scanned']}",
             f"parcels on the scale: {scale['episodes']} ({scale['settled']} settled, "
             f"{scale['never_settled']} never settled, {scale['overload']} overload)"]
    undecodable = report["undecodable_frames"]
    if any(undecodable.values()):
        lines.append("frames that did not decode: " + ", ".join(
            f"{role} {count}" for role, count in undecodable.items()))
    offsets = report["offsets_ms"]
    lines.append("")
    lines.append(f"offset, reading minus scan ({offsets['count']} parcels with a reading):")
    if offsets["count"]:
        lines.append("  " + "  ".join(f"{key} {offsets[key]:+.1f}"
                                      for key in ("p1", "p5", "p50", "p95", "p99")) + " ms")
        peak = max(row["count"] for row in report["histogram"])
        for row in report["histogram"]:
            bar = "#" * math.ceil(HISTOGRAM_BAR * row["count"] / peak) if row["count"] else ""
            lines.append(f"  {row['from_ms']:>+8.1f} .. {row['to_ms']:>+8.1f} ms "
                         f"{bar:<{HISTOGRAM_BAR}} {row['count']:>5}")
    gaps = report["gaps_ms"]
    if gaps["count"]:
        lines.append("gaps between parcels: " + "  ".join(
            f"{key} {gaps[key]:.1f}" for key in ("p1", "p5", "p50")) + " ms")
    missing = report["no_reading_nearby"]
    if report["read_late"]:
        lines.append(f"left out, read late by a busy host: {report['read_late']} scans")
    lines.append(f"no reading nearby: {missing['count']} of {report['parcels_scanned']} "
                 f"scans ({100 * missing['share']:.1f} %)")
    for scan in missing["scans"][:SHOWN_UNMATCHED]:
        what = "no-read" if scan["barcode"] is None else terminal_safe(repr(scan["barcode"]))
        lines.append(_fit(f"  scan at +{scan['at_s']:.3f} s: {what}"))
    if missing["count"] > SHOWN_UNMATCHED:
        lines.append(f"  ... and {missing['count'] - SHOWN_UNMATCHED} more")
    lines.append("")
    proposal = report["proposal"]
    current = report["current"]
    if proposal is None:
        lines.append(f"too few parcels to propose settings: {offsets['count']} with a reading, "
                     f"{report['parcels_needed']} needed; measure longer")
        return [wrapped for line in lines for wrapped in (textwrap.wrap(
            line, WIDTH, subsequent_indent="  ") or [""])]
    lines.append(f"proposed: offset_ms = {proposal['offset_ms']}, window_ms = "
                 f"{proposal['window_ms']} (configured: {current['offset_ms']} and "
                 f"{current['window_ms']})")
    lines.append(f"  99 % of offsets within {proposal['jitter_ms']:.1f} ms of "
                 f"{proposal['offset_ms']}; the window adds a margin")
    if proposal["shortest_gap_ms"] is not None:
        separable = proposal["separable"]
        lines.append(f"  2 x window_ms = {2 * proposal['window_ms']} ms "
                     f"{'<' if separable else '>='} {proposal['shortest_gap_ms']:.1f} ms, the "
                     "shortest gaps (p1)")
        lines.append("  parcels can be told apart" if separable else
                     "  TOO CLOSE: such parcels cannot be told apart")
        if proposal["gaps_too_close"]:
            lines.append(f"  {proposal['gaps_too_close']} of {gaps['count']} gaps are shorter "
                         "than 2 x window_ms: those parcels would go without a weight")
    for warning in proposal["warnings"]:
        lines.append(f"warning: {warning}")
    out = [wrapped for line in lines for wrapped in (textwrap.wrap(
        line, WIDTH, subsequent_indent="  ") or [""])]
    return [*out, "", "paste into the agent's config:", "", *proposal["toml"].splitlines()]


def _fit(line: str) -> str:
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"

