"""The outcome ledger: parcels waiting for their outcome, recovered from disk after a stop."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.runtime import outcome_ledger
from edge_agent.runtime.outcome_ledger import LEDGER_NAME, OutcomeLedger, Waiting


def waiting(parcel_id: str, until_ms: int = 2_000) -> Waiting:
    return Waiting(parcel_id, 3, "ZHUHAI", 1_000, until_ms)


def test_open_keeps_the_parcels_without_an_outcome_in_order(tmp_path: Path):
    ledger, found = OutcomeLedger.open(tmp_path)
    assert found == {}
    for name in ("a", "b", "c"):
        ledger.expect(waiting(name))
    ledger.resolved("b")
    ledger.close()
    again, found = OutcomeLedger.open(tmp_path)
    assert list(found) == ["a", "c"] and found["a"] == waiting("a")
    # The file was rewritten with only the waiting ones.
    assert len((tmp_path / LEDGER_NAME).read_text().splitlines()) == 2
    again.close()


def test_a_torn_last_line_is_skipped_and_counted(tmp_path: Path):
    ledger, _ = OutcomeLedger.open(tmp_path)
    ledger.expect(waiting("a"))
    ledger.close()
    with (tmp_path / LEDGER_NAME).open("a") as handle:
        handle.write('{"d":"b","bin":3,"la')  # a power cut in the middle of a write
    again, found = OutcomeLedger.open(tmp_path)
    assert list(found) == ["a"] and again.skipped == 1
    again.close()


def test_outcomes_already_in_the_outbox_count_as_resolved(tmp_path: Path):
    ledger, _ = OutcomeLedger.open(tmp_path)
    ledger.expect(waiting("a"))
    ledger.expect(waiting("b"))
    ledger.close()  # killed after b's outcome event was stored, before its "o" line
    asked = []

    def in_outbox():
        asked.append(True)
        return ["b"]

    again, found = OutcomeLedger.open(tmp_path, in_outbox)
    assert list(found) == ["a"] and asked == [True]
    again.close()
    # With nothing waiting, the outbox is not read at all.
    (tmp_path / LEDGER_NAME).write_text("")
    asked.clear()
    OutcomeLedger.open(tmp_path, in_outbox)[0].close()
    assert asked == []


def test_compaction_keeps_the_file_proportional_to_the_parcels_in_flight(tmp_path: Path,
                                                                          monkeypatch):
    monkeypatch.setattr(outcome_ledger, "COMPACT_AFTER_LINES", 100)
    ledger, _ = OutcomeLedger.open(tmp_path)
    for number in range(60):
        ledger.expect(waiting(f"p{number}"))
        ledger.resolved(f"p{number}")
    ledger.expect(waiting("last"))
    assert ledger.compact_due()
    ledger.compact([waiting("last")])
    assert not ledger.compact_due()
    ledger.expect(waiting("next"))
    ledger.close()
    _, found = OutcomeLedger.open(tmp_path)
    assert list(found) == ["last", "next"]


@settings(max_examples=50)
@given(ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8, unique=True),
       lane=st.text(min_size=1, max_size=20), key=st.none() | st.text(max_size=20),
       resolved=st.data())
def test_any_ids_lanes_and_tracking_numbers_come_back_as_written(ids, lane, key, resolved):
    with tempfile.TemporaryDirectory() as tmp:
        ledger, _ = OutcomeLedger.open(Path(tmp))
        done = resolved.draw(st.sets(st.sampled_from(ids)))
        for parcel_id in ids:
            ledger.expect(Waiting(parcel_id, 7, lane, 1, 2, key))
        for parcel_id in done:
            ledger.resolved(parcel_id)
        ledger.close()
        again, found = OutcomeLedger.open(Path(tmp))
        again.close()
    assert list(found) == [i for i in ids if i not in done]
    assert all(w.lane == lane and w.key == key for w in found.values())
