"""`edge-agent manifest import|show|stats`: the barcode -> destination store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/edge-agent")


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("manifest", help="import and inspect the parcel manifest")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="manifest_command", metavar="SUBCOMMAND")
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, metavar="DIR",
                       help=f"where manifest.sqlite3 lives (default {DEFAULT_STATE_DIR})")
    state.add_argument("--json", action="store_true", help="print JSON")
    imp = commands.add_parser(
        "import", parents=[state],
        help="import a CSV (header row) or JSON Lines file; refused whole if any line is bad",
    )
    imp.add_argument("file", type=Path)
    imp.set_defaults(handler=run_import)
    show = commands.add_parser("show", parents=[state], help="one barcode's entry")
    show.add_argument("barcode")
    show.set_defaults(handler=run_show)
    stats = commands.add_parser("stats", parents=[state], help="entries, size, countries")
    stats.set_defaults(handler=run_stats)


def run_import(args: argparse.Namespace) -> int:
    from edge_agent.sorting.manifest import Manifest

    with Manifest.open(args.state_dir) as manifest:
        report = manifest.import_file(args.file)
    if args.json:
        print(json.dumps({"file": report.source, "rows": report.rows, "total": report.total,
                          "seconds": round(report.seconds, 3)}))
    else:
        print(f"{report.source}: imported {report.rows} rows in {report.seconds:.2f} s; "
              f"{report.total} entries in the manifest")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from edge_agent.sorting.identifiers import parse_identifier
    from edge_agent.sorting.manifest import Manifest

    with Manifest.open(args.state_dir) as manifest:
        entry = manifest.get(args.barcode)
        if entry is None:  # a scanned form (AIM prefix, GS1 string) finds its SSCC / S10 key
            entry = manifest.get(parse_identifier(args.barcode).key)
    if entry is None:
        print(json.dumps(None) if args.json else f"{args.barcode}: not in the manifest")
        return 1
    print(json.dumps(entry.to_dict()) if args.json else "\n".join(
        f"{name}: {value if value is not None else '-'}" for name, value in entry.to_dict().items()
    ))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from edge_agent.sorting.manifest import Manifest

    with Manifest.open(args.state_dir) as manifest:
        stats = manifest.stats()
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"{stats['path']}: {stats['entries']} entries, {stats['bytes'] / 1e6:.1f} MB")
        for country, count in list(stats["by_country"].items())[:20]:
            print(f"  {country} {count}")
    return 0
