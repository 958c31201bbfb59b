"""The outbox's backlog as the diagnostic bundle reads it: from the state directory, read-only,
beside a running agent or after it stopped; a damaged file is named, never raised."""

from pathlib import Path

from edge_agent.config import OutboxConfig
from edge_agent.sync.outbox import Outbox
from edge_agent.sync.outbox_store import DB_NAME, read_only_stats


def test_counts_by_kind_beside_an_open_outbox_and_after_it_closed(tmp_path: Path):
    box = Outbox.open(tmp_path, OutboxConfig())
    try:
        for kind in ("parcel", "parcel", "alarm"):
            box.append(kind, {})
        box.flush()
        stats = read_only_stats(tmp_path)
        assert stats["present"] and stats["pending_by_kind"] == {"parcel": 2, "alarm": 1}
        assert stats["oldest_age_s"] is not None and stats["oldest_age_s"] >= 0
        box.acknowledge([1])
        box.append("parcel", {})  # the writer is never blocked by the reader above
    finally:
        box.close()
    assert read_only_stats(tmp_path)["pending_by_kind"] == {"parcel": 2, "alarm": 1}


def test_no_outbox_and_a_damaged_one(tmp_path: Path):
    assert read_only_stats(tmp_path) == {"present": False, "path": str(tmp_path / DB_NAME)}
    (tmp_path / DB_NAME).write_bytes(b"not a database, 100 bytes of it " * 4)
    stats = read_only_stats(tmp_path)
    assert stats["present"] and "error" in stats and "pending_by_kind" not in stats
