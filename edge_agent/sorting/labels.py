"""Which label names the parcel, when a scan tunnel or DWS unit reads several.

A parcel often carries several labels: the carrier's, an SSCC, an order label. One of them names
the parcel; two that name *different* parcels mean two parcels were read as one, or an old label
was left on a reused box, and no lane is safe: EXCEPTION with reason `multiple_labels`, every
label in the event. The choice, in order:

1. Labels that do not parse as a valid identifier are set aside (a smudged label is not a
   second parcel), and labels with the same identifier key count once. No valid label: the
   first one (the decision then says why it is not valid).
2. Two valid labels of the same kind with different keys (two S10 numbers, two SSCCs) name two
   parcels: a parcel has one of each.
3. Labels that *say where the parcel goes* (the manifest knows them, or a GS1 label carries its
   own ship-to address) name a parcel. Several: the parcel's only if their manifest entries
   agree (one parcel registered under several labels); otherwise they name different parcels.
4. A known label beside a valid label the manifest does not know: the unknown one may be the
   parcel's own and the known one a stray label of another parcel (left on a reused box), so
   by default this is `multiple_labels` too. A site whose manifest lists only one of each
   parcel's labels sets the rules' `trust_known_label = true`: the known label then wins, at
   the risk of a stray label that the manifest knows routing a parcel whose own it does not.
5. None known: the valid label of the highest-priority kind (the rules' `label_priority`); the
   parcel has no destination then, and the rules send it to EXCEPTION anyway.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from edge_agent.sorting.identifiers import Identifier, IdentifierKind, parse_identifier
from edge_agent.sorting.manifest_entry import ManifestEntry

if TYPE_CHECKING:
    from edge_agent.sorting.decision import Parcel

DEFAULT_PRIORITY = (IdentifierKind.S10, IdentifierKind.GS1, IdentifierKind.CARRIER)
MULTIPLE_LABELS = "multiple_labels"
# GS1 AIs that carry a destination (ship-to postal code): such a label says where it goes.
_DESTINATION_AIS = ("420", "421")


class LabelChoice(NamedTuple):
    index: int  # of the chosen label in the list given
    identifier: Identifier  # its parse; for `multiple_labels`, an invalid identifier saying so
    entry: ManifestEntry | None  # its manifest entry


def choose_label(
    labels: Sequence[tuple[str, str | None]],
    lookup: Callable[[str | None], ManifestEntry | None],
    priority: Sequence[str] = DEFAULT_PRIORITY,
    trust_known_label: bool = False,
) -> LabelChoice:
    """`labels`: (data, symbology) as read, at least one; `lookup`: the manifest's get."""
    parsed = [parse_identifier(data, symbology) for data, symbology in labels]
    valid: dict[str, int] = {}  # key -> index of its first label
    kinds: set[str] = set()
    for index, identifier in enumerate(parsed):
        if identifier.valid and identifier.key is not None and identifier.key not in valid:
            if identifier.kind in kinds:
                return AMBIGUOUS  # two different keys of one kind: two parcels
            kinds.add(identifier.kind)
            valid[identifier.key] = index
    if not valid:
        return LabelChoice(0, parsed[0], lookup(parsed[0].key))
    entries = {key: lookup(key) for key in valid}
    known = [key for key in valid
             if entries[key] is not None or _carries_destination(parsed[valid[key]])]
    if len(known) > 1 and not _same_parcel([entries[key] for key in known]):
        return AMBIGUOUS
    if known and len(known) < len(valid) and not trust_known_label:
        return AMBIGUOUS
    candidates = known or list(valid)
    rank = {kind: place for place, kind in enumerate(priority)}
    best = min(candidates, key=lambda key: (rank.get(parsed[valid[key]].kind, len(rank)),
                                            valid[key]))
    return LabelChoice(valid[best], parsed[valid[best]], entries[best])


def _same_parcel(entries: list[ManifestEntry | None]) -> bool:
    """Manifest entries of one parcel registered under several labels: the same in every field
    but the label. A label that carries its own address has no entry to compare: not provable."""
    if any(entry is None for entry in entries):
        return False
    return len({entry[1:] for entry in entries if entry is not None}) == 1


def _carries_destination(identifier: Identifier) -> bool:
    return any(ai in identifier.fields for ai in _DESTINATION_AIS)


MULTIPLE_LABELS_IDENTIFIER = Identifier(IdentifierKind.UNKNOWN, False, MULTIPLE_LABELS, None)
AMBIGUOUS = LabelChoice(0, MULTIPLE_LABELS_IDENTIFIER, None)


def resolve_labels(
    parcel: Parcel, lookup: Callable[[str | None], ManifestEntry | None],
    priority: Sequence[str] = DEFAULT_PRIORITY, trust_known_label: bool = False,
) -> tuple[Parcel, Identifier, ManifestEntry | None]:
    """A parcel with several labels: the one named `barcode`, its parse and manifest entry.
    The first label stays the event's barcode when none can be chosen (all are in `labels`)."""
    choice = choose_label([(label, None) for label in parcel.labels], lookup, priority,
                          trust_known_label)
    chosen = parcel.labels[choice.index]
    if chosen != parcel.barcode:
        parcel = dataclasses.replace(parcel, barcode=chosen, symbology=None)
    return parcel, choice.identifier, choice.entry
