"""The outbox's journal: kill -9 before ingestion, torn tails, idempotent replay, rotation under
concurrent appends, and a publisher served before ingestion."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from support.broker import MosquittoBroker
from sync_helpers import agent_config, linked_outbox, wait_for

from edge_agent.config import OutboxConfig
from edge_agent.sync import outbox as outbox_module
from edge_agent.sync import outbox_store
from edge_agent.sync.journal import (
    MAGIC,
    UNREADABLE_SUFFIX,
    JournalFile,
    decode_records,
    encode_record,
    journal_path,
    journal_paths,
)
from edge_agent.sync.outbox import DB_NAME, Outbox

# A window far longer than any test step: nothing is ingested unless the test says so.
NEVER_MS = 1000


def _stored_seqs(state_dir: Path) -> list[int]:
    """The seqs in SQLite itself (read-only, beside any open Outbox)."""
    db = sqlite3.connect(f"file:{state_dir / DB_NAME}?mode=ro", uri=True)
    try:
        return [seq for (seq,) in db.execute("SELECT seq FROM events ORDER BY seq")]
    finally:
        db.close()


def _write_journal(path: Path, rows: list[tuple[int, str, str, int, str]]) -> bytes:
    journal = JournalFile.create(path)
    for row in rows:
        journal.write(encode_record(*row))
    journal.close()
    return path.read_bytes()


def _rows(first: int, last: int) -> list[tuple[int, str, str, int, str]]:
    return [(seq, f"{seq:032x}", "parcel", 1_700_000_000_000 + seq, f'{{"seq":{seq}}}')
            for seq in range(first, last + 1)]


def test_records_round_trip_and_any_cut_keeps_exactly_the_whole_records():
    rows = [*_rows(1, 3), (4, "e4", "alarm", 5, '{"text":"tab\\tand \\u00e9"}')]
    data = b"".join(encode_record(*row) for row in rows)
    assert decode_records(data).rows == rows
    ends = [len(b"".join(encode_record(*row) for row in rows[:n])) for n in range(5)]
    for cut in range(len(data)):
        contents = decode_records(data[:cut])
        whole = max(n for n in range(5) if ends[n] <= cut)
        assert contents.rows == rows[:whole]
        assert contents.dropped_bytes == cut - ends[whole]


def test_kill_9_between_append_and_ingestion_loses_nothing(tmp_path: Path):
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from edge_agent.config import OutboxConfig
        from edge_agent.sync.outbox import Outbox
        box = Outbox.open(Path({str(tmp_path)!r}), OutboxConfig(group_commit_ms={NEVER_MS}))
        for i in range(300):
            box.append("parcel", {{"n": i}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == -9, result.stderr
    # Killed inside the group-commit window: the events are in the journal only.
    assert _stored_seqs(tmp_path) == []
    assert len(journal_paths(tmp_path)) == 1
    with capture_logs() as logs:
        box = Outbox.open(tmp_path, OutboxConfig())
    try:
        replayed = [e for e in logs if e["event"] == "outbox.journal_replayed"]
        assert replayed and replayed[0]["records"] == 300
        parcels = [r for r in box.pending(1000) if r.kind == "parcel"]
        assert [r.payload["n"] for r in parcels] == list(range(300))
        assert [r.seq for r in parcels] == list(range(1, 301))
        assert box.append("parcel", {}).seq > 300
        assert journal_paths(tmp_path) == [journal_path(tmp_path, 1)]  # this run's, fresh
    finally:
        box.close()
    assert journal_paths(tmp_path) == []  # a clean close leaves everything in SQLite


@pytest.mark.parametrize("damage", ["cut mid-record", "zero-filled tail", "bad crc"])
def test_a_torn_last_record_is_ignored_and_reported(tmp_path: Path, damage: str):
    path = journal_path(tmp_path, 1)
    data = _write_journal(path, _rows(1, 5))
    last = len(encode_record(*_rows(5, 5)[0]))
    if damage == "cut mid-record":
        damaged = data[: len(data) - last // 2]
    elif damage == "zero-filled tail":  # a power cut can leave the size without the data
        damaged = data[: len(data) - last] + bytes(last)
    else:
        damaged = data[:-1] + bytes([data[-1] ^ 0xFF])
    path.write_bytes(damaged)
    with capture_logs() as logs:
        box = Outbox.open(tmp_path, OutboxConfig())
    try:
        assert [r.seq for r in box.pending(100)] == [1, 2, 3, 4]
        torn = [e for e in logs if e["event"] == "outbox.journal_torn_tail"]
        assert len(torn) == 1 and torn[0]["kept_records"] == 4
        assert torn[0]["dropped_bytes"] == len(damaged) - (len(data) - last)
    finally:
        box.close()


def test_a_file_that_is_not_a_journal_is_kept_aside_and_the_store_opens(tmp_path: Path):
    stranger = journal_path(tmp_path, 1)
    stranger.write_bytes(b"not a journal at all\n" * 4)
    _write_journal(journal_path(tmp_path, 2), _rows(1, 3))
    with capture_logs() as logs:
        box = Outbox.open(tmp_path, OutboxConfig())
    try:
        assert [r.seq for r in box.pending(100)] == [1, 2, 3]
        problem = [e for e in logs if e["event"] == "outbox.journal_unreadable"]
        assert problem and problem[0]["path"] == str(stranger)
        aside = stranger.with_name(stranger.name + UNREADABLE_SUFFIX)
        assert aside.read_bytes() == b"not a journal at all\n" * 4
    finally:
        box.close()


def test_a_journal_cut_while_being_created_holds_nothing(tmp_path: Path):
    journal_path(tmp_path, 1).write_bytes(MAGIC[:7])
    box = Outbox.open(tmp_path, OutboxConfig())
    try:
        assert box.pending(10) == []
        assert box.append("parcel", {}).seq == 1
    finally:
        box.close()


def test_replay_is_idempotent_and_skips_what_was_acknowledged(tmp_path: Path):
    live, saved = tmp_path / "live", tmp_path / "saved-journal"
    box = Outbox.open(live, OutboxConfig(group_commit_ms=NEVER_MS))
    for i in range(10):
        box.append("parcel", {"n": i})
    box.flush()  # ingested; the journal file still holds all ten
    assert _stored_seqs(live) == list(range(1, 11))
    box.acknowledge([1, 2, 3])
    shutil.copy(journal_path(live, 1), saved)  # as a kill before the journal's deletion would
    box.close()
    for _ in range(2):  # a second replay of the same file (a kill during the first) adds nothing
        shutil.copy(saved, journal_path(live, 1))
        box = Outbox.open(live, OutboxConfig())
        try:
            assert [r.seq for r in box.pending(100)] == list(range(4, 11))
            assert box.stats()["depth"] == 7
        finally:
            box.close()


def test_an_event_acknowledged_before_ingestion_is_not_stored(tmp_path: Path):
    box = Outbox.open(tmp_path, OutboxConfig(group_commit_ms=NEVER_MS))
    try:
        records = [box.append("parcel", {"n": i}) for i in range(5)]
        # The publisher sees events the flusher has not ingested yet.
        assert box.pending(10) == records
        assert box.pending(2, after_seq=2) == records[2:4]
        box.acknowledge([1, 2, 4])
        assert [r.seq for r in box.pending(10)] == [3, 5]
        assert box.stats()["depth"] == 2
        box.flush()
        assert _stored_seqs(tmp_path) == [3, 5]
        assert [r.seq for r in box.pending(10)] == [3, 5]
        assert box.stats()["depth"] == 2
    finally:
        box.close()


def test_events_acknowledged_within_the_ingestion_delay_never_reach_sqlite(tmp_path: Path,
                                                                         mocker):
    # With the broker up, events are acknowledged long before INGEST_AFTER_S: the flusher's
    # windows only fsync the journal and forget them, no SQLite insert (then delete) per event.
    inserted = mocker.spy(outbox_store, "insert_rows")
    box = Outbox.open(tmp_path, OutboxConfig(group_commit_ms=5))
    try:
        for i in range(50):
            box.append("parcel", {"n": i})
        wait_for(lambda: box._synced_seq >= 50, timeout_s=10)  # a window has run since
        box.acknowledge(range(1, 51))  # as the link does, up to 0.25 s after the PUBACKs
        wait_for(lambda: not box._tail, timeout_s=10)  # a later window forgot them
        assert sum(len(list(call.args[1])) for call in inserted.call_args_list) == 0
        assert box.stats()["depth"] == 0
    finally:
        box.close()
    assert _stored_seqs(tmp_path) == []


def test_an_unacknowledged_event_is_ingested_once_it_has_waited(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(outbox_module, "INGEST_AFTER_S", 0.05)
    box = Outbox.open(tmp_path, OutboxConfig(group_commit_ms=5))
    try:
        for i in range(5):
            box.append("parcel", {"n": i})
        box.acknowledge([2])
        wait_for(lambda: _stored_seqs(tmp_path) == [1, 3, 4, 5], timeout_s=10)
        assert [r.seq for r in box.pending(10)] == [1, 3, 4, 5]
    finally:
        box.close()


def test_an_acknowledgement_never_lets_replay_skip_an_unacknowledged_event(tmp_path: Path):
    live, saved = tmp_path / "live", tmp_path / "saved"
    box = Outbox.open(live, OutboxConfig(group_commit_ms=NEVER_MS))
    for i in range(10):
        box.append("parcel", {"n": i})
    box.acknowledge([1, 2, 3, 5, 6])  # its transaction raises the replay watermark to 3 only
    # A kill now: the journal holds all ten, SQLite only the watermark.
    saved.mkdir()
    for path in [live / DB_NAME, Path(f"{live / DB_NAME}-wal"), *journal_paths(live)]:
        shutil.copy(path, saved / path.name)
    box.close()
    box = Outbox.open(saved, OutboxConfig())
    try:
        assert [r.seq for r in box.pending(100) if r.kind == "parcel"] == [4, 5, 6, 7, 8, 9, 10]
    finally:
        box.close()


def test_rotation_under_concurrent_appends_loses_and_duplicates_nothing(tmp_path: Path):
    # A small budget makes the journal rotate every few dozen events.
    box = Outbox.open(tmp_path, OutboxConfig(group_commit_ms=1, disk_budget_mb=1.5))
    threads, per_thread = 4, 1500
    seen: list[int] = []
    done = threading.Event()

    def write(name: int) -> None:
        for i in range(per_thread):
            box.append("parcel", {"writer": name, "i": i})

    def publish() -> None:
        # As the link does: from a cursor, in order, never a gap across SQLite and memory.
        cursor = 0
        while not done.is_set() or cursor < threads * per_thread:
            records = box.pending(100, after_seq=cursor)
            for record in records:
                assert record.seq == cursor + 1, (record.seq, cursor)
                cursor = record.seq
                seen.append(cursor)
            if not records:
                done.wait(0.001)  # polling for more, as the publisher's idle wait does

    writers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    reader = threading.Thread(target=publish)
    try:
        reader.start()
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
        done.set()
        reader.join(30)
        assert not reader.is_alive()
        rotations = box._journal_number
        box.flush()
        total = threads * per_thread
        assert seen == list(range(1, total + 1))
        records = box.pending(total + 1)
        assert [r.seq for r in records] == list(range(1, total + 1))
        keys = {(r.payload["writer"], r.payload["i"]) for r in records}
        assert len(keys) == total
        # How often it rotates depends on how often the flusher runs (fewer, larger windows on a
        # loaded machine); what matters is that appends crossed rotations.
        assert rotations >= 2, "the journal should have rotated while appends ran"
        assert _stored_seqs(tmp_path) == list(range(1, total + 1))
        assert len(journal_paths(tmp_path)) == 1  # rotated-away journals were deleted
    finally:
        done.set()
        box.close()


def test_the_link_publishes_before_ingestion(tmp_path: Path, mosquitto: MosquittoBroker):
    config = agent_config(tmp_path / "state", mosquitto.port)
    config = config.model_copy(update={"outbox": OutboxConfig(group_commit_ms=NEVER_MS)})
    with linked_outbox(config, ["sortline/v1/HKG1/L1/events/#"]) as (central, outbox, link):
        # Drain the start-up window, so the next append opens a fresh one of a whole second.
        outbox.flush()
        record = outbox.append("parcel", {"n": 1})
        link.notify_appended()
        wait_for(lambda: central.on("events/parcel"), timeout_s=NEVER_MS / 1000 / 2,
                 what="the event, well inside the group-commit window")
        assert central.on("events/parcel")[0]["event_id"] == record.event_id
        assert _stored_seqs(config.state_dir) == []  # still only in the journal
        wait_for(lambda: outbox.stats()["depth"] == 0, what="acknowledged")
