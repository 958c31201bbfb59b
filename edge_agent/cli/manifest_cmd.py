"""`edge-agent manifest import|show|stats`: the barcode -> destination store.

The state directory comes from --state-dir, else --config, else the installed config when
there is one (see state_location.py). `import` writes, so it takes the state directory's lock
first (refused while an agent runs there: central's `manifest.upsert` updates a running line).
`show` and `stats` only read: they never create a store, and say where they looked when there
is none (exit 1).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_agent.cli.state_location import StateLocation, add_location_options, locate
from edge_agent.exit_codes import EXIT_FAILED, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("manifest", help="import and inspect the parcel manifest")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="manifest_command", metavar="SUBCOMMAND")
    state = argparse.ArgumentParser(add_help=False)
    add_location_options(state)
    state.add_argument("--json", action="store_true", help="print JSON")
    imp = commands.add_parser(
        "import", parents=[state],
        help="import a CSV (header row) or JSON Lines file; refused whole if any line is bad",
    )
    imp.add_argument("file", type=Path, help="the CSV or JSON Lines file")
    imp.set_defaults(handler=run_import)
    show = commands.add_parser("show", parents=[state], help="one barcode's entry")
    show.add_argument("barcode", help="the barcode as printed or as scanned (AIM prefix, GS1)")
    show.set_defaults(handler=run_show)
    stats = commands.add_parser("stats", parents=[state], help="entries, size, countries")
    stats.set_defaults(handler=run_stats)


def run_import(args: argparse.Namespace) -> int:
    from edge_agent.sorting.manifest import Manifest
    from edge_agent.state_lock import StateDirLock

    location = locate(args)
    with StateDirLock.acquire(location.state_dir, "manifest import"), \
            Manifest.open(location.state_dir) as manifest:
        report = manifest.import_file(args.file)
    if args.json:
        print(json.dumps({"file": report.source, "rows": report.rows, "total": report.total,
                          "seconds": round(report.seconds, 3)}))
    else:
        print(f"{report.source}: imported {report.rows} rows in {report.seconds:.2f} s; "
              f"{report.total} entries in the manifest")
    return EXIT_OK


def _no_store(location: StateLocation, as_json: bool) -> int:
    from edge_agent.sorting.manifest import MANIFEST_FILE

    path = location.state_dir / MANIFEST_FILE
    if as_json:
        print(json.dumps({"error": "no manifest", "path": str(path), "why": location.why}))
    else:
        print(f"no manifest at {path} (state directory: {location.why}); nothing was created. "
              f"Import one with: edge-agent manifest import FILE", file=sys.stderr)
    return EXIT_FAILED


def run_show(args: argparse.Namespace) -> int:
    from edge_agent.safe_text import terminal_safe
    from edge_agent.sorting.identifiers import parse_identifier
    from edge_agent.sorting.manifest import Manifest

    location = locate(args)
    manifest = Manifest.open_read_only(location.state_dir)
    if manifest is None:
        return _no_store(location, args.json)
    with manifest:
        entry = manifest.get(args.barcode)
        if entry is None:  # a scanned form (AIM prefix, GS1 string) finds its SSCC / S10 key
            entry = manifest.get(parse_identifier(args.barcode).key)
    if entry is None:
        print(json.dumps(None) if args.json
              else f"{terminal_safe(args.barcode)}: not in the manifest ({manifest.path})")
        return EXIT_FAILED
    print(json.dumps(entry.to_dict()) if args.json else "\n".join(
        f"{name}: {terminal_safe(str(value)) if value is not None else '-'}"
        for name, value in entry.to_dict().items()
    ))
    return EXIT_OK


def run_stats(args: argparse.Namespace) -> int:
    from edge_agent.sorting.manifest import Manifest

    location = locate(args)
    manifest = Manifest.open_read_only(location.state_dir)
    if manifest is None:
        return _no_store(location, args.json)
    with manifest:
        stats = manifest.stats()
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"{stats['path']}: {stats['entries']} entries, {stats['bytes'] / 1e6:.1f} MB")
        for country, count in list(stats["by_country"].items())[:20]:
            print(f"  {country} {count}")
    return EXIT_OK
