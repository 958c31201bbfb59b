"""Decision latency with a one-million-entry manifest, beside a plain baseline; import rate.

Run by hand (bounded: about a minute on a small machine):
    .venv/bin/python bench/bench_decision.py [--rows 1000000] [--parcels 100000]

Measures, in one process and one run:
- manifest import: a CSV of --rows rows into a fresh SQLite manifest (rows per second, file size);
- manifest look-up alone (SQLite primary-key search), p50/p99/p99.9;
- decide() alone (barcode parsed in it, manifest entry already fetched), then parse + look-up +
  hold look-up + decide() given the parsed barcode (the agent's path), with --holds of central's
  holds active (every tenth on a parcel of the mix, by barcode or by order id; the rest on
  other barcodes);
- the baseline: a dict look-up and a trivial if/else rule, the least a decision could cost.
Manifest rows declare an order id, dangerous goods (a few), a declared value, currency and
customs mode, so decide() converts values and checks limits and the air guard as on a real line.
The parcels are the simulated line's mix (edge_agent/simulation/parcel_mix.py: S10 and GS1 labels,
no-reads, exports, bad check digits, mismatched weights...), their manifest rows among --rows.
Objects made during set-up are moved out of the garbage collector's way (gc.freeze()).
Every parcel has a different barcode, so the identifier parser's one-entry cache never helps
decide() alone; the agent's path parses once and hands the result to decide().
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge_agent.simulation.parcel_mix import SimParcel, parcel_mix
from edge_agent.sorting.decision import Parcel, decide, identifier_of
from edge_agent.sorting.holds import Hold, HoldIndex
from edge_agent.sorting.identifiers import s10_check_digit
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import Manifest
from edge_agent.sorting.rules import default_rules

# Destinations in the proportions a Hong Kong cross-border warehouse might see.
POSTAL_CODES = [("CN", "200001"), ("CN", "310000"), ("CN", "215000"), ("CN", "510000"),
                ("CN", "100000"), ("US", "10001"), ("JP", "1000001"), ("HK", None)]


def barcode(number: int) -> str:
    serial = f"{number:08d}"
    return f"CP{serial}{s10_check_digit(serial)}CN"


def write_manifest_csv(path: Path, rows: int, mix: list[SimParcel], rng: random.Random) -> None:
    """`rows` rows: the mix's own rows, and filler rows (other barcodes) up to the count."""
    own = [p.manifest for p in mix if p.manifest is not None]
    with path.open("w", encoding="utf-8") as out:
        out.write("barcode,country,postal_code,declared_weight_kg,service,order_id,"
                  "dangerous_goods,declared_value,currency,customs_mode\n")
        for number in range(max(0, rows - len(own))):
            country, postal = rng.choice(POSTAL_CODES)
            weight = round(rng.uniform(0.1, 40.0), 2)
            out.write(f"{barcode(number)},{country},{postal or ''},{weight},standard,"
                      f"{declarations(number, rng)}\n")
        for number, row in enumerate(own):
            out.write(f"{row['barcode']},{row['country']},{row['postal_code'] or ''},"
                      f"{row['declared_weight_kg']},{row['service']},"
                      f"{declarations(number, rng)}\n")


def declarations(number: int, rng: random.Random) -> str:
    """order_id, dangerous_goods, declared_value, currency, customs_mode for one row: most rows
    declare a value (a few in a currency the rules have no rate for), some dangerous goods."""
    flags = rng.choices(["none", "", "lithium_battery", "liquid"], weights=(80, 12, 5, 3))[0]
    currency = rng.choices(["HKD", "CNY", "USD", "XAU"], weights=(60, 30, 9, 1))[0]
    mode = rng.choice(["personal_postal", "cross_border_ecommerce"])
    return f"ORD-{number // 3},{flags},{round(rng.uniform(5, 1200), 2)},{currency},{mode}"


def _holds(count: int, mix: list[SimParcel], now: float) -> list[Hold]:
    """`count` holds: one on every tenth labelled parcel of the mix, the rest on barcodes no
    parcel carries (a hold is looked up for every parcel, held or not)."""
    labelled = [sim.barcode for sim in mix[::10] if sim.barcode][:count]
    keys = labelled + [barcode(90_000_000 + n) for n in range(count - len(labelled))]
    return [Hold(f"H{n}", key, None, "bench", now + 3600, now) for n, key in enumerate(keys)]


def cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs from /proc/stat; (0, 0) where there is none."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (values[7] if len(values) > 7 else 0), sum(values)


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000

    return {"p50_us": at(0.50), "p99_us": at(0.99), "p99.9_us": at(0.999),
            "mean_us": statistics.fmean(ordered) / 1000}


def time_each(items, work) -> dict[str, dict[str, float]]:
    """Per item: wall time, and this thread's CPU time (what the work cost, even when other
    processes on a shared machine take the CPU away in the middle of it).

    The CPU clock is a system call (~0.5 µs each, and a moment where the kernel may run other
    work), so it is read outside the wall clock's readings: the wall time holds the work and
    one vDSO clock read, not the other clock's system calls."""
    gc.collect()
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    wall_samples, cpu_samples = [], []
    for item in items:
        cpu_start = cpu()
        wall_start = wall()
        work(item)
        wall_end = wall()
        cpu_samples.append(cpu() - cpu_start)
        wall_samples.append(wall_end - wall_start)
    return {"wall": percentiles(wall_samples), "cpu": percentiles(cpu_samples)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--holds", type=int, default=10_000,
                        help="active holds (10,000 is the agent's bound)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    rules = default_rules()
    states = {"ZHUHAI": LaneState.OPEN}
    now = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''} "
                   f"Python {platform.python_version()}".strip(),
        "rows": args.rows, "parcels": args.parcels,
        # The machine may be shared: the load before the run says how quiet it was.
        "load_average_1min": os.getloadavg()[0],
    }
    steal_before, total_before = cpu_ticks()
    mix = parcel_mix(args.parcels, seed=7)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "manifest.csv"
        write_manifest_csv(csv_path, args.rows, mix, rng)
        with Manifest.open(Path(tmp) / "state") as manifest:
            report = manifest.import_file(csv_path)
            stats = manifest.stats()
            results["import"] = {"seconds": round(report.seconds, 2),
                                 "rows_per_s": round(report.rows / report.seconds),
                                 "db_mb": round(stats["bytes"] / 1e6, 1)}
            # As a DWS line sees them: every parcel measured, its weight paired (the inputs a
            # decision has had since dimensions and pairing outcomes were added).
            parcels = [
                Parcel(f"p{sim.index}", sim.barcode, sim.symbology, sim.barcode is None,
                       sim.weight_kg, sim.weight_kg is not None,
                       "ok" if sim.weight_kg is not None else None, now, 0,
                       weight_pairing="paired" if sim.weight_kg is not None else "unsettled",
                       weight_offset_ms=-3.0, length_mm=rng.uniform(100, 800),
                       width_mm=rng.uniform(100, 500), height_mm=rng.uniform(20, 400))
                for sim in mix
            ]
            baseline_table = {p.barcode: ("CN", "200001", 2.0) for p in parcels}

            def baseline(parcel: Parcel) -> str:
                row = baseline_table.get(parcel.barcode)
                if row is None or parcel.weight_kg is None:
                    return "EXCEPTION"
                near = row[1].startswith("20") and parcel.weight_kg <= 30
                return "ZHUHAI" if near else "SHANGHAI"

            holds = HoldIndex(_holds(args.holds, mix, now.timestamp()))
            results["holds_active"] = len(holds)

            def full_path(parcel: Parcel) -> None:  # as runtime.agent does it
                identifier = identifier_of(parcel)
                entry = manifest.get(identifier.key)
                hold = None
                if holds:
                    hold = holds.find(identifier.key, entry.order_id if entry else None,
                                      now.timestamp())
                decide(parcel, rules, entry, states, now, identifier=identifier, hold=hold)

            # Half the parcels warm the caches and the interpreter; the other half are measured.
            half = len(parcels) // 2
            for parcel in parcels[:half]:
                full_path(parcel)
            measured = parcels[half:]
            keys = {p.parcel_id: identifier_of(p).key for p in measured}
            entries = {p.parcel_id: manifest.get(keys[p.parcel_id]) for p in measured}
            lanes = collections.Counter(
                decide(p, rules, entries[p.parcel_id], states, now).rule for p in measured)
            results["rules_matched"] = dict(lanes.most_common())
            # The bench holds 100,000 parcels and their entries alive; a full collection walking
            # them would be charged to whichever decision it interrupts. The agent's steady heap
            # is small, and it freezes its start-up objects the same way.
            gc.freeze()
            results["baseline_dict_if_else"] = time_each(measured, baseline)
            results["manifest_get"] = time_each(
                measured, lambda p: manifest.get(keys[p.parcel_id]))
            results["hold_find"] = time_each(
                measured, lambda p: holds.find(keys[p.parcel_id], None, now.timestamp()))
            results["decide_only"] = time_each(
                measured, lambda p: decide(p, rules, entries[p.parcel_id], states, now))
            results["lookup_and_decide"] = time_each(measured, full_path)
    steal_after, total_after = cpu_ticks()
    # On a virtual machine the host may take the CPU away; that time lands in every tail.
    elapsed = total_after - total_before
    results["cpu_steal_percent"] = round(100 * (steal_after - steal_before) / elapsed, 1) \
        if elapsed else 0.0
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{results['date']}  {results['machine']}  rows={args.rows} parcels={args.parcels}"
              f"  load={results['load_average_1min']:.2f}"
              f"  cpu stolen by the host={results['cpu_steal_percent']}%")
        matched = results["rules_matched"]
        print("measured parcels by rule:", ", ".join(f"{k} {v}" for k, v in matched.items()))
        imp = results["import"]
        print(f"import: {imp['seconds']} s, {imp['rows_per_s']:,} rows/s, {imp['db_mb']} MB")
        print(f"{'':<24} {'wall p50':>9} {'p99':>7} {'p99.9':>8}   {'cpu p50':>8} {'p99':>7} "
              f"{'p99.9':>8}   (µs)")
        print(f"holds active: {results['holds_active']:,}")
        for name in ("baseline_dict_if_else", "manifest_get", "hold_find", "decide_only",
                     "lookup_and_decide"):
            w, c = results[name]["wall"], results[name]["cpu"]
            print(f"{name:<24} {w['p50_us']:9.1f} {w['p99_us']:7.1f} {w['p99.9_us']:8.1f}   "
                  f"{c['p50_us']:8.1f} {c['p99_us']:7.1f} {c['p99.9_us']:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
