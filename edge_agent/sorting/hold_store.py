"""The holds' store: STATE_DIR/holds.sqlite3, so a hold outlives a restart or a power cut.

Central's `holds.put` and `holds.lift` are written here (on the command worker's thread) before
the decision loop's HoldIndex learns of them, so a hold the reply confirmed is on disk. At
start the agent loads the holds that have not expired; expired ones are deleted as holds are
written, and never loaded: an expiry is the end of a hold even if the agent was off when it
came.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from edge_agent.errors import EdgeAgentError
from edge_agent.sorting.holds import Hold

HOLDS_FILE = "holds.sqlite3"
BUSY_TIMEOUT_S = 5.0
# Expired holds stay on disk this long: a clock that was wrong when they seemed to expire has
# long been corrected, and the store still holds at most a week of holds more than are active.
KEEP_EXPIRED_S = 7 * 86_400
# SQLite's bound-parameter limit is 999 in old builds: look-ups by id go in chunks of this.
ID_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS holds (
    hold_id TEXT PRIMARY KEY,
    barcode TEXT,
    order_id TEXT,
    reason TEXT NOT NULL,
    expires_at REAL NOT NULL,
    put_at REAL NOT NULL
) WITHOUT ROWID
"""
_COLUMNS = "hold_id, barcode, order_id, reason, expires_at, put_at"
# Put again (the same id): central may move the expiry or change the reason; the time the
# agent first took the hold stays.
_PUT = (
    f"INSERT INTO holds ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hold_id) DO UPDATE "
    "SET barcode = excluded.barcode, order_id = excluded.order_id, reason = excluded.reason, "
    "expires_at = excluded.expires_at"
)


class HoldStoreError(EdgeAgentError):
    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class HoldStore:
    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> HoldStore:
        path = Path(state_dir) / HOLDS_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")  # a confirmed hold survives a cut
            connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise HoldStoreError(str(path), [f"cannot open the holds' store: {exc}"]) from None
        return cls(path, connection)

    @classmethod
    def open_read_only(cls, state_dir: Path) -> HoldStore | None:
        """The existing store for reading (the `decide` dry run), or None when there is none."""
        path = Path(state_dir) / HOLDS_FILE
        if not path.is_file():
            return None
        try:
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                         timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            connection.execute("SELECT count(*) FROM holds").fetchone()
        except sqlite3.Error as exc:
            raise HoldStoreError(str(path), [f"cannot read the holds' store: {exc}"]) from None
        return cls(path, connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(self, holds: Iterable[Hold], now: float) -> list[Hold]:
        """Write holds (one transaction) and drop those expired for over KEEP_EXPIRED_S; the
        holds as stored."""
        rows = list(holds)
        try:
            with self._lock, self._transaction():
                self._db.execute("DELETE FROM holds WHERE expires_at <= ?",
                                 (now - KEEP_EXPIRED_S,))
                self._db.executemany(_PUT, rows)
                return self._select_ids([hold.hold_id for hold in rows])
        except sqlite3.Error as exc:
            raise HoldStoreError(str(self.path), [f"holds not stored: {exc}"]) from None

    def lift(self, hold_ids: Iterable[str]) -> list[str]:
        """Delete holds by id; the ids that were there (a lift of an unknown id is no error:
        it may have expired, or been lifted already)."""
        ids = list(dict.fromkeys(hold_ids))
        try:
            with self._lock, self._transaction():
                present = [hold.hold_id for hold in self._select_ids(ids)]
                self._db.executemany("DELETE FROM holds WHERE hold_id = ?",
                                     [(i,) for i in present])
        except sqlite3.Error as exc:
            raise HoldStoreError(str(self.path), [f"holds not lifted: {exc}"]) from None
        return present

    def active(self, now: float) -> list[Hold]:
        """The holds that have not expired at `now` (an expiry is in UNIX seconds)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM holds WHERE expires_at > ? "
                                    "ORDER BY put_at", (now,)).fetchall()
        return [Hold(*row) for row in rows]

    def count_new(self, hold_ids: list[str], now: float) -> tuple[int, int]:
        """(active holds, how many of these ids are not among them): for the bound."""
        try:
            with self._lock:
                (active,) = self._db.execute("SELECT count(*) FROM holds WHERE expires_at > ?",
                                             (now,)).fetchone()
                present = sum(hold.expires_at > now for hold in self._select_ids(hold_ids))
        except sqlite3.Error as exc:
            raise HoldStoreError(str(self.path), [f"holds not stored: {exc}"]) from None
        return active, len(hold_ids) - present

    def _select_ids(self, hold_ids: list[str]) -> list[Hold]:
        found: list[Hold] = []
        for start in range(0, len(hold_ids), ID_CHUNK):
            chunk = hold_ids[start:start + ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            found += [Hold(*row) for row in self._db.execute(
                f"SELECT {_COLUMNS} FROM holds WHERE hold_id IN ({marks})", chunk)]
        return found

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (the store keeps its last state)."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
