"""Calibrating window pairing from what a line really does (`edge-agent diag pairing`).

Window pairing (edge_agent.sorting.pairing_window) expects a parcel's reading at `offset_ms` ±
`window_ms` from its scan, and cannot tell apart parcels scanned less than 2 × window_ms
apart. This module measures, from the scans and the settled platter episodes of a stretch of
real traffic, where the readings really come and how close the parcels really are, and
proposes the two settings. Pure statistics: the caller decodes ports or captures.

Matching a scan to its reading, without knowing either setting:

1. Coarse centres: every reading within `max_offset_ms` of every scan gives a difference
   (reading - scan). A parcel's own reading gives one at the true offset each time, while a
   neighbour's falls wherever the gaps put it, so the densest `COARSE_WIDTH_MS` of the
   differences is the offset's candidate; the densest elsewhere is its rival. On an even line
   (nearly constant gaps) the next parcel's reading follows each scan as regularly as the
   parcel's own precedes it, and the rival can be as dense, or denser by chance.
   Steps 2 and 3 run from each candidate, and the one whose readings sit tighter around their
   median wins: a parcel's own reading sits where the geometry puts it, a neighbour's wherever
   the gap puts it. When the two fit about as well, the proposal says the measurement is
   ambiguous (using the wrong one would pair every scan with a neighbour's weight).
2. Each scan's reading is the one nearest to scan + centre, if it lies closer to that than
   half the gap to the neighbouring scans: otherwise it would be as much a neighbour's, and the
   scan counts as having no reading nearby (a parcel that never settled, a lost reading).
3. The centre becomes the median of those offsets, and step 2 runs once more from it.

A parcel whose stamps may be late (a live measurement whose host was busy read the bytes after
they had waited: the hub's stamp_error_ns) is left out, counted apart: it would measure the
host, not the line.

The proposal: `offset_ms` is the median offset; `window_ms` covers the 99th percentile of
|offset - offset_ms|, times `WINDOW_MARGIN`, plus `WINDOW_SLACK_MS` for the stamps a loaded
host reads late; and 2 × window_ms must stay below the 1st percentile of the gaps between
scans, or the settings cannot separate the traffic the line really has.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Weight
from edge_agent.sorting.scale_readings import Episode, PlatterEpisodes
from edge_agent.units import NS_PER_MS

# Fewer parcels than this and the 1st and 99th percentiles are one or two parcels' luck.
MIN_PARCELS = 50
# How far from its scan a parcel's reading is looked for, unless told otherwise.
DEFAULT_MAX_OFFSET_MS = 1000
# The width over which differences are counted to find the coarse centre.
COARSE_WIDTH_MS = 20.0
# A second candidate offset at least this far from the densest is a rival (a neighbour's
# reading, regular enough on an even line to look like the parcel's own)...
RIVAL_DISTANCE_MS = 2 * COARSE_WIDTH_MS
# ...and the measurement is ambiguous when the rival holds this share of the best's count and
# its readings sit about as tightly (within this ratio of the spread, plus this slack).
RIVAL_SHARE = 0.8
RIVAL_SPREAD_RATIO = 1.5
RIVAL_SPREAD_SLACK_MS = 1.0
# The window covers the jitter seen, widened by this much for the jitter not yet seen...
WINDOW_MARGIN = 1.25
# ...plus this, for stamps read late by a busy host (the hub's stamp_error_ns).
WINDOW_SLACK_MS = 5
# Above this share of scans without a reading nearby (or with stamps read late), the proposal
# says so.
NO_READING_WARN_SHARE = 0.05
# A parcel whose scan and reading stamps together may be this late (the host was busy and read
# the bytes after they had waited) says nothing precise about the line: left out.
BLURRED_MS = 2.0
HISTOGRAM_BINS = 12
PERCENTILES_OFFSET = (1, 5, 50, 95, 99)
PERCENTILES_GAP = (1, 5, 50)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: at least q % of `values` are at most the result."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# -- from decoded messages to parcels and readings ---------------------------------------------
def parcel_scans(scans: Iterable[tuple[int, str | None]], debounce_ms: int) -> list[int]:
    """Scan times (ns) of distinct parcels, in time order, from (time, barcode) pairs (None: a
    no-read). The same barcode read again within `debounce_ms` is the same parcel, as the
    agent's pairer counts it; a no-read is always a parcel of its own."""
    last_read: dict[str, int] = {}
    times = []
    for stamp, data in sorted(scans, key=lambda scan: scan[0]):
        if data is not None:
            previous = last_read.get(data)
            last_read[data] = stamp
            if previous is not None and stamp - previous <= debounce_ms * NS_PER_MS:
                continue
        times.append(stamp)
    return times


def platter_episodes(weights: Sequence[Weight], *, min_weight_kg: float, settle_gap_ms: int,
                     errors_ns: Sequence[int] | None = None) -> list[Episode]:
    """Every platter episode of a stream of scale frames, with the agent's own detector;
    `errors_ns`: how late each frame's stamp may be (the hub's stamp_error_ns).

    PlatterEpisodes keeps only its latest episodes; each is kept here as it starts (its
    object goes on being updated until the parcel leaves), so a long capture loses none."""
    detector = PlatterEpisodes(min_weight_kg=min_weight_kg, gap_ns=settle_gap_ms * NS_PER_MS)
    found: list[Episode] = []
    for index, weight in enumerate(weights):
        detector.add(weight, errors_ns[index] if errors_ns is not None else 0)
        if detector.episodes and (not found or detector.episodes[-1] is not found[-1]):
            found.append(detector.episodes[-1])
    return found


# -- matching ----------------------------------------------------------------------------------
def coarse_centres(scans_ns: Sequence[int], readings_ns: Sequence[int],
                   max_offset_ms: float) -> list[tuple[int, float]]:
    """(count, centre) of the densest COARSE_WIDTH_MS of all (reading - scan) differences
    within max_offset_ms, then of the densest at least RIVAL_DISTANCE_MS from it (a rival:
    on a nearly periodic line the next parcel's reading follows each scan as regularly as the
    parcel's own precedes it). Empty when no reading lies within reach of any scan."""
    reach = max_offset_ms * NS_PER_MS
    differences: list[float] = []
    for scan in scans_ns:
        low = bisect.bisect_left(readings_ns, scan - reach)
        high = bisect.bisect_right(readings_ns, scan + reach)
        differences += [(reading - scan) / NS_PER_MS for reading in readings_ns[low:high]]
    differences.sort()
    windows: list[tuple[int, float, float]] = []  # (count, -|centre|, centre)
    end = 0
    for start, first in enumerate(differences):
        while end < len(differences) and differences[end] - first <= COARSE_WIDTH_MS:
            end += 1
        middle = (first + differences[end - 1]) / 2
        windows.append((end - start, -abs(middle), middle))
    if not windows:
        return []
    # Ties go to the centre nearest zero: a scale near the scanner is the common case.
    best = max(windows)
    found = [(best[0], best[2])]
    rivals = [w for w in windows if abs(w[2] - best[2]) >= RIVAL_DISTANCE_MS]
    if rivals:
        rival = max(rivals)
        found.append((rival[0], rival[2]))
    return found


def _matched_from(scans_ns: Sequence[int], readings_ns: Sequence[int], centre_ms: float,
                  max_offset_ms: float) -> list[int | None]:
    """Steps 2 and 3 of the module doc from one coarse centre."""
    matched = match_readings(scans_ns, readings_ns, centre_ms, max_offset_ms)
    first = [(reading - scan) / NS_PER_MS for scan, reading in zip(scans_ns, matched, strict=True)
             if reading is not None]
    if first:
        matched = match_readings(scans_ns, readings_ns, percentile(first, 50), max_offset_ms)
    return matched


def _spread_ms(scans_ns: Sequence[int], matched: Sequence[int | None]) -> float:
    """How tightly the matched readings sit around their median offset (p90 of the
    deviations): a parcel's own reading sits where the line's geometry puts it, a neighbour's
    wherever the gap between the two parcels does."""
    offsets = [(reading - scan) / NS_PER_MS for scan, reading in zip(scans_ns, matched, strict=True)
               if reading is not None]
    if not offsets:
        return math.inf
    middle = percentile(offsets, 50)
    return percentile([abs(value - middle) for value in offsets], 90)


def best_matching(scans_ns: Sequence[int], readings_ns: Sequence[int], max_offset_ms: float
                  ) -> tuple[list[int | None], str | None]:
    """Each scan's reading (or None), from the candidate centre whose readings sit tighter,
    and a warning when the other candidate fits about as well: then the measurement cannot
    tell a parcel's own reading from its neighbour's."""
    candidates = coarse_centres(scans_ns, readings_ns, max_offset_ms)
    if not candidates:
        return [None] * len(scans_ns), None
    tried = []
    for count, centre in candidates:
        matched = _matched_from(scans_ns, readings_ns, centre, max_offset_ms)
        tried.append((_spread_ms(scans_ns, matched), -count, centre, matched))
    tried.sort(key=lambda t: t[:2])
    (spread, count, centre, matched), *others = tried
    warning = None
    for other_spread, other_count, other_centre, _ in others:
        if (-other_count >= RIVAL_SHARE * -count
                and other_spread <= RIVAL_SPREAD_RATIO * spread + RIVAL_SPREAD_SLACK_MS):
            warning = (
                f"readings follow the scans as regularly at {other_centre:+.0f} ms as at "
                f"{centre:+.0f} ms: the line is too even for this measurement to tell a "
                "parcel's own reading from its neighbour's. Check which is right with a few "
                "parcels of known weight (or say where the scale sits with --max-offset-ms "
                "below the wrong one) before using this offset: a wrong one pairs every scan "
                "with a neighbour's weight.")
    return matched, warning


def match_readings(scans_ns: Sequence[int], readings_ns: Sequence[int], centre_ms: float,
                   max_offset_ms: float) -> list[int | None]:
    """For each scan, its reading's stamp, or None when no reading lies nearer to scan + centre
    than half the gap to a neighbouring scan."""
    found: list[int | None] = []
    for index, scan in enumerate(scans_ns):
        expected = scan + centre_ms * NS_PER_MS
        nearest = _nearest(readings_ns, expected)
        neighbours = [abs(scans_ns[i] - scan) for i in (index - 1, index + 1)
                      if 0 <= i < len(scans_ns)]
        reach = min(neighbours) / 2 if neighbours else math.inf
        if (nearest is None or abs(nearest - expected) >= reach
                or abs(nearest - scan) > max_offset_ms * NS_PER_MS):
            found.append(None)
        else:
            found.append(nearest)
    return found


def _nearest(ordered: Sequence[int], target: float) -> int | None:
    at = bisect.bisect_left(ordered, target)
    around = [ordered[i] for i in (at - 1, at) if 0 <= i < len(ordered)]
    return min(around, key=lambda value: abs(value - target)) if around else None


# -- the proposal ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proposal:
    offset_ms: int
    window_ms: int
    jitter_ms: float  # the 99th percentile of |offset - offset_ms|
    shortest_gap_ms: float | None  # the 1st percentile of the gaps between scans
    separable: bool  # 2 x window_ms below shortest_gap_ms
    # Gaps under 2 x window_ms: those parcels go without a weight (and raise the agent's
    # pairing_traffic_too_close alarm) even when the line is separable at its 1st percentile.
    gaps_too_close: int = 0
    warnings: list[str] = field(default_factory=list)

    def toml(self) -> str:
        return (f'[pairing]\nmode = "window"\noffset_ms = {self.offset_ms}\n'
                f"window_ms = {self.window_ms}\n")


def propose(offsets_ms: Sequence[float], gaps_ms: Sequence[float],
            base: PairingConfig | None = None) -> Proposal:
    """Settings for these offsets and gaps; `base`: the line's other settings (the decision
    deadline the wait must fit in)."""
    offset = round(percentile(offsets_ms, 50))
    jitter = percentile([abs(value - offset) for value in offsets_ms], 99)
    window = max(1, math.ceil(jitter * WINDOW_MARGIN + WINDOW_SLACK_MS))
    shortest = percentile(gaps_ms, 1) if gaps_ms else None
    separable = shortest is None or 2 * window < shortest
    warnings = []
    if not separable:
        warnings.append(
            f"2 x window_ms ({2 * window} ms) is not below the shortest gaps between parcels "
            f"(p1 {shortest:.0f} ms): the settings cannot tell such parcels apart and they "
            f"would go to EXCEPTION. Slow the induction (parcels at least {2 * window + 1} ms "
            "apart) or move the scale nearer the scanner (less jitter).")
    try:
        settings = {} if base is None else base.model_dump()
        PairingConfig.model_validate({**settings, "mode": "window", "offset_ms": offset,
                                      "window_ms": window})
    except ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors())
        warnings.append(f"the agent would refuse these settings: {problems}")
    return Proposal(offset, window, jitter, shortest, separable,
                    gaps_too_close=sum(gap < 2 * window for gap in gaps_ms), warnings=warnings)


@dataclass(frozen=True)
class Calibration:
    scans: int
    readings: int  # settled readings
    offsets_ms: list[float]  # of the scans matched to a reading
    gaps_ms: list[float]
    unmatched: list[int]  # indices of the scans with no reading nearby
    proposal: Proposal | None  # None: fewer than MIN_PARCELS matched
    # Indices of the scans left out because their stamps (or their reading's) may be more
    # than BLURRED_MS late: the measuring host was busy, not the line.
    blurred: list[int] = field(default_factory=list)

    @property
    def no_reading_share(self) -> float:
        return len(self.unmatched) / self.scans if self.scans else 0.0

    def offset_percentiles(self) -> dict[str, float]:
        return _percentiles(self.offsets_ms, PERCENTILES_OFFSET)

    def gap_percentiles(self) -> dict[str, float]:
        return _percentiles(self.gaps_ms, PERCENTILES_GAP)


def _percentiles(values: Sequence[float], which: Sequence[int]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values, q), 1) for q in which} if values else {}


def calibrate(scans_ns: Sequence[int], readings_ns: Sequence[int], *,
              scan_errors_ns: Sequence[int] | None = None,
              reading_errors_ns: Sequence[int] | None = None,
              max_offset_ms: float = DEFAULT_MAX_OFFSET_MS, min_parcels: int = MIN_PARCELS,
              base: PairingConfig | None = None) -> Calibration:
    """Match each scan to its reading and propose settings (see the module doc). The errors:
    how late each stamp may be (zero when unknown, as in a capture)."""
    scan_stamps = sorted(zip(scans_ns, scan_errors_ns or [0] * len(scans_ns), strict=True))
    scans = [stamp for stamp, _ in scan_stamps]
    readings = sorted(readings_ns)
    reading_error: dict[int, int] = {}
    for stamp, error in zip(readings_ns, reading_errors_ns or [0] * len(readings_ns),
                            strict=True):
        reading_error[stamp] = max(error, reading_error.get(stamp, 0))
    gaps = [(later - earlier) / NS_PER_MS for earlier, later in itertools.pairwise(scans)]
    matched, ambiguity = best_matching(scans, readings, max_offset_ms)
    offsets, unmatched, blurred = [], [], []
    for index, ((scan, error), reading) in enumerate(zip(scan_stamps, matched, strict=True)):
        if reading is not None:
            error += reading_error[reading]
        if error > BLURRED_MS * NS_PER_MS:
            blurred.append(index)
        elif reading is None:
            unmatched.append(index)
        else:
            offsets.append((reading - scan) / NS_PER_MS)
    proposal = None
    if len(offsets) >= min_parcels:
        proposal = propose(offsets, gaps, base)
        if ambiguity is not None:
            proposal.warnings.append(ambiguity)
        if scans and len(unmatched) / len(scans) > NO_READING_WARN_SHARE:
            proposal.warnings.append(
                f"{len(unmatched)} of {len(scans)} scans had no reading nearby: parcels that "
                "never settled, or a scale that misses parcels (diag watch shows its frames).")
        if scans and len(blurred) / len(scans) > NO_READING_WARN_SHARE:
            proposal.warnings.append(
                f"the host was busy while measuring: {len(blurred)} of {len(scans)} parcels "
                "were read late and left out; measure again with the machine otherwise idle.")
    return Calibration(len(scans), len(readings), offsets, gaps, unmatched, proposal, blurred)


def histogram(values: Sequence[float], bins: int = HISTOGRAM_BINS
              ) -> list[tuple[float, float, int]]:
    """(low, high, count) over [min, max] in at most `bins` bins of a round width (1, 2 or 5
    times a power of ten ms), so a technician reads the edges at a glance."""
    if not values:
        return []
    low, high = min(values), max(values)
    width = _round_width((high - low) / bins if high > low else 1.0)
    while True:  # aligning the first edge to the width may need one bin more: widen instead
        start = math.floor(low / width) * width
        count = math.floor((high - start) / width) + 1
        if count <= bins:
            break
        width = _round_width(width * 1.01)
    counts = [0] * count
    for value in values:
        counts[min(count - 1, int((value - start) // width))] += 1
    return [(start + i * width, start + (i + 1) * width, n) for i, n in enumerate(counts)]


def _round_width(raw: float) -> float:
    power = 10 ** math.floor(math.log10(raw))
    for step in (1, 2, 5, 10):
        if step * power >= raw:
            return float(step * power)
    return 10.0 * power
