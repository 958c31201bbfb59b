"""The durable outbox: ids and sequence numbers, restarts, kill -9, acknowledgement, budget."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.waiting import wait_for

from edge_agent.config import OutboxConfig
from edge_agent.ids import id_time_ms
from edge_agent.sync.outbox import UNCLEAN_SEQ_SKIP, Outbox
from edge_agent.sync.payloads import AlarmEvent


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox.open(tmp_path, OutboxConfig())
    yield box
    box.close()


def test_append_assigns_increasing_seq_and_time_ordered_unique_ids(outbox: Outbox):
    records = [outbox.append("parcel", {"parcel_id": f"p{i}"}) for i in range(50)]
    assert [r.seq for r in records] == list(range(1, 51))
    ids = [r.event_id for r in records]
    assert ids == sorted(ids) and len(set(ids)) == 50
    stored = records[7].payload
    assert stored["seq"] == 8 and stored["event_id"] == ids[7] and stored["parcel_id"] == "p7"
    assert stored["schema_version"] == 1


def test_pending_is_oldest_first_and_acknowledge_deletes(outbox: Outbox):
    for i in range(10):
        outbox.append("parcel", {"n": i})
    assert [r.seq for r in outbox.pending(3)] == [1, 2, 3]
    assert [r.seq for r in outbox.pending(3, after_seq=8)] == [9, 10]
    outbox.acknowledge([1, 2, 3, 99])  # an unknown seq (a duplicate PUBACK) is harmless
    assert [r.seq for r in outbox.pending(100)] == list(range(4, 11))
    assert outbox.stats()["depth"] == 7


def test_seq_and_ids_continue_after_restart_even_when_drained(tmp_path: Path):
    box = Outbox.open(tmp_path, OutboxConfig())
    last = [box.append("parcel", {}) for _ in range(5)][-1]
    box.acknowledge(range(1, 6))
    box.close()
    box = Outbox.open(tmp_path, OutboxConfig())
    try:
        again = box.append("parcel", {})
        assert again.seq == 6
        assert again.event_id > last.event_id
        assert id_time_ms(again.event_id) >= id_time_ms(last.event_id)
    finally:
        box.close()


def test_appended_rows_survive_kill_9(tmp_path: Path):
    # A child appends, prints how many, and is killed without any chance to close the store.
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from edge_agent.config import OutboxConfig
        from edge_agent.sync.outbox import UNCLEAN_SEQ_SKIP, Outbox
        box = Outbox.open(Path({str(tmp_path)!r}), OutboxConfig(group_commit_ms=1000))
        for i in range(200):
            box.append("parcel", {{"n": i}})
        print("appended", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == -9 and "appended" in result.stdout
    box = Outbox.open(tmp_path, OutboxConfig())
    try:
        rows = box.pending(1000)
        assert [r.payload["n"] for r in rows[:200]] == list(range(200))
        # Not closed cleanly: seqs jump (so none a power cut lost is ever reused), with an alarm.
        alarm = rows[200]
        assert alarm.kind == "alarm" and alarm.payload["alarm"] == "unclean_restart"
        assert alarm.seq == 201 + UNCLEAN_SEQ_SKIP
        assert alarm.payload["details"]["skipped_first_seq"] == 201
        assert box.append("parcel", {}).seq == alarm.seq + 1
    finally:
        box.close()


# Appends between two budget checks in the eviction test: ~8 kB, well inside the 10 % margin
# eviction leaves below the budget.
PARCELS_PER_FLUSH = 20


def test_disk_budget_evicts_telemetry_first_and_reports_parcel_gaps(tmp_path: Path):
    budget_mb = 0.25
    box = Outbox.open(tmp_path, OutboxConfig(disk_budget_mb=budget_mb))
    try:
        for i in range(100):
            box.append("telemetry", {"pad": "t" * 300, "n": i})
        parcels = 0
        # The flusher checks the budget after each window; flush() does the same at once, so
        # the store never runs far past the budget between two checks here.
        while box.stats()["evicted"].get("telemetry", 0) < 100 and parcels < 5000:
            for _ in range(PARCELS_PER_FLUSH):
                box.append("parcel", {"pad": "p" * 300, "n": parcels})
                parcels += 1
            box.flush()
        stats = box.stats()
        assert stats["evicted"].get("telemetry") == 100, "telemetry goes first"
        assert "parcel" not in stats["evicted"]
        for i in range(2000):
            box.append("parcel", {"pad": "p" * 300, "n": parcels + i})
        box.flush()
        stats = box.stats()
        assert stats["evicted"]["parcel"] > 0
        # The real pages plus the journal, not an estimate.
        assert box.budget.used_bytes() <= budget_mb * 1024 * 1024
        alarms = [r.payload for r in box.pending(100_000) if r.kind == "alarm"]
        assert alarms, "a parcel gap must be reported as an alarm"
        alarm = AlarmEvent.model_validate(alarms[0])
        assert alarm.alarm == "outbox_evicted" and alarm.details["evicted"]["parcel"] > 0
        assert alarm.details["first_seq"] > 100
    finally:
        box.close()
    reopened = Outbox.open(tmp_path, OutboxConfig(disk_budget_mb=budget_mb))
    try:  # eviction counts are persisted: they outlive a restart
        assert reopened.stats()["evicted"]["telemetry"] == 100
    finally:
        reopened.close()


def test_space_is_reclaimed_after_a_backlog_drains(tmp_path: Path):
    box = Outbox.open(tmp_path, OutboxConfig())
    try:
        for i in range(5000):
            box.append("parcel", {"pad": "x" * 400, "n": i})
        full = box.stats()["bytes_on_disk"]
        box.acknowledge(range(1, 5001))
        # The flusher checkpoints and vacuums in the background: wait for it, with a deadline.
        wait_for(lambda: box.stats()["bytes_on_disk"] < full / 4, timeout_s=10,
                 what="the file to shrink")
    finally:
        box.close()


def test_a_stored_body_is_the_published_json(outbox: Outbox):
    record = outbox.append("alarm", {"alarm": "x", "severity": "info", "message": "m"})
    assert json.loads(record.body) == record.payload
    AlarmEvent.model_validate(record.payload)
