"""Several labels on one parcel: the one that names it, or EXCEPTION (multiple_labels)."""

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sorting.decision import decide
from edge_agent.sorting.identifiers import s10_check_digit
from edge_agent.sorting.labels import MULTIPLE_LABELS, choose_label, resolve_labels
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.replay import redecide
from edge_agent.sorting.rules import default_rules

from .helpers import MORNING, parcel

RULES = default_rules()


def s10(serial: int, prefix: str = "RB", country: str = "GB") -> str:
    digits = f"{serial:08d}"
    return f"{prefix}{digits}{s10_check_digit(digits)}{country}"


def sscc(serial: int) -> str:
    from edge_agent.sorting.identifiers import gs1_check_digit

    body = f"37613032{serial:09d}"
    return f"]C100{body}{gs1_check_digit(body)}"


SHANGHAI = ManifestEntry(s10(1), "CN", "200001", 2.0)
LP_ORDER = "LP0000000000777"  # a carrier (order) number: valid, no check digit


def lookup_of(*entries: ManifestEntry):
    by_key = {e.barcode: e for e in entries}
    return by_key.get


def chosen(labels: list[str], *entries: ManifestEntry, trust_known: bool = False):
    choice = choose_label([(label, None) for label in labels], lookup_of(*entries),
                          trust_known_label=trust_known)
    return labels[choice.index], choice.identifier.problem


def test_one_valid_label_beside_a_smudged_one_is_the_parcels():
    assert chosen(["RB123456786US", s10(1)], SHANGHAI) == (s10(1), None)  # bad check digit


def test_a_known_label_beside_an_unknown_one_could_be_a_stray():
    assert chosen([LP_ORDER, s10(1)], SHANGHAI)[1] == MULTIPLE_LABELS
    # A site whose manifest lists one label per parcel trusts the one it knows.
    assert chosen([LP_ORDER, s10(1)], SHANGHAI, trust_known=True) == (s10(1), None)


def test_two_labels_of_one_kind_are_two_parcels():
    assert chosen([s10(1), s10(2)], SHANGHAI)[1] == MULTIPLE_LABELS


def test_two_known_labels_that_disagree_are_two_parcels():
    other = ManifestEntry(LP_ORDER, "US", "10001", 1.0)
    assert chosen([s10(1), LP_ORDER], SHANGHAI, other)[1] == MULTIPLE_LABELS


def test_one_parcel_registered_under_two_labels_is_one_parcel():
    same = ManifestEntry(LP_ORDER, "CN", "200001", 2.0)
    assert chosen([LP_ORDER, s10(1)], SHANGHAI, same) == (s10(1), None)  # S10 first


def test_none_known_the_priority_decides():
    assert chosen([LP_ORDER, s10(5)]) == (s10(5), None)
    assert chosen([LP_ORDER, sscc(3)]) == (sscc(3), None)


def test_the_same_label_read_twice_is_one_label():
    assert chosen([s10(1), s10(1)], SHANGHAI) == (s10(1), None)


def test_multiple_labels_go_to_exception_with_every_label_in_the_event():
    labels = (s10(1), s10(2))
    scanned = parcel(labels[0]).__class__(**{
        **{f: getattr(parcel(), f) for f in parcel().__slots__}, "barcode": labels[0],
        "labels": labels})
    resolved, identifier, entry = resolve_labels(scanned, lookup_of(SHANGHAI))
    decision = decide(resolved, RULES, entry, {}, MORNING, identifier=identifier)
    assert (decision.lane, decision.rule, decision.reasons) == (
        "EXCEPTION", "multiple_labels", ("multiple_labels",))
    record = decision.to_dict()
    assert record["inputs"]["labels"] == list(labels)
    # Replayed later, without the day's manifest, the verdict stands.
    assert redecide(_json(record), RULES, "Asia/Hong_Kong", "CN").rule == "multiple_labels"


def _json(record: dict) -> dict:
    import json

    return json.loads(json.dumps(record))


# A warehouse of parcels, each with its own S10, some with an order number and an SSCC too,
# each going somewhere of its own; the manifest knows each parcel under its S10 (and, for some,
# its other labels too). A parcel's labels as read: its own, smudged ones, and a stray label of
# another parcel. Whatever is read, the choice is one of the parcel's own labels or EXCEPTION.
@st.composite
def reads(draw):
    count = draw(st.integers(2, 6))
    parcels = []
    for n in range(count):
        own = [s10(100 + n)]
        if draw(st.booleans()):
            own.append(f"LP{n:013d}")
        if draw(st.booleans()):
            own.append(sscc(200 + n))
        parcels.append(own)
    entries = []
    for n, own in enumerate(parcels):
        registered = own if draw(st.booleans()) else own[:1]
        entries += [ManifestEntry(label[3:21] if label.startswith("]C1") else label, "CN",
                                  f"2{n:05d}", 1.0 + n) for label in registered]
    target = draw(st.integers(0, count - 1))
    read = draw(st.lists(st.sampled_from(parcels[target]), min_size=1, max_size=3))
    if draw(st.booleans()):  # a stray label of another parcel
        other = draw(st.integers(0, count - 1).filter(lambda i: i != target))
        read.append(draw(st.sampled_from(parcels[other])))
    if draw(st.booleans()):
        read.append("RB123456786US")  # smudged: its check digit is wrong
    return parcels[target], draw(st.permutations(read)), entries


@given(reads())
def test_never_picks_a_label_that_names_another_parcel(case):
    own, read, entries = case
    label, problem = chosen(list(read), *entries)
    if problem == MULTIPLE_LABELS or label in own:
        return
    # No label read is known, and the priority took a stray one (labels.py, rule 5): it names
    # no destination, so the parcel goes to EXCEPTION all the same, never to another's lane.
    scanned = dataclasses.replace(parcel(read[0]), labels=tuple(read))
    resolved, identifier, entry = resolve_labels(scanned, lookup_of(*entries))
    assert entry is None, (own, read, label)
    decision = decide(resolved, RULES, entry, {}, MORNING, identifier=identifier)
    assert decision.lane == "EXCEPTION", (own, read, label, decision)
