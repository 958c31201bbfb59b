"""How often, and for how long, this process loses the CPU: the floor under any tail latency.

Run by hand:
    .venv/bin/python bench/clock_gaps.py [--seconds 2] [--over-us 30]

One thread reads the monotonic clock in a tight loop; any step between two readings longer
than 5 µs is time the thread did not run (an interrupt, the host, another process). A piece of
work lasting D µs is hit by such a gap with a probability of about rate x D, so once
rate x D passes 1 %, the work's p99 is set by these gaps, not by the work.
"""

from __future__ import annotations

import argparse
import os
import time

GAP_NS = 5_000  # a clock read takes well under a microsecond; 5 µs is time taken away


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--over-us", type=float, default=30.0, help="count gaps longer than this")
    args = parser.parse_args()
    clock = time.perf_counter_ns
    gaps: list[int] = []
    end = clock() + int(args.seconds * 1e9)
    last = clock()
    while last < end:
        now = clock()
        if now - last > GAP_NS:
            gaps.append(now - last)
        last = now
    gaps.sort()
    over = [g for g in gaps if g > args.over_us * 1000]
    rate = len(over) / args.seconds
    print(f"load average {os.getloadavg()[0]:.2f}; {len(gaps)} gaps over 5 µs in {args.seconds} s")
    if gaps:
        print(f"gap length µs: p50 {gaps[len(gaps) // 2] / 1000:.1f}, "
              f"p90 {gaps[int(len(gaps) * 0.9)] / 1000:.1f}, max {gaps[-1] / 1000:.1f}")
    print(f"gaps over {args.over_us:g} µs: {rate:.0f} per second, so work of "
          f"{0.01 / rate * 1e6 if rate else float('inf'):.0f} µs or more has 1 % of its runs hit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
