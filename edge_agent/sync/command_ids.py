"""The command ids this agent has acted on, with their replies, kept on disk.

Why on disk: a command is acted on once. Kept in memory only, a restart forgot every id, and a
command delivered again after it (a retry central sent while the agent was down, a queued QoS 1
message) was acted on a second time, undoing whatever central had done since.

Why bounded: ids are kept for as long as a command can be valid (its longest lifetime plus the
clock tolerance: an older duplicate is refused as expired anyway), and never more than
MAX_IDS of them. Replies are stored as the small JSON the agent sent (problems are capped).

One SQLite file, STATE_DIR/commands.sqlite3, used by the command worker's thread only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from edge_agent.sync.command_checks import CLOCK_SKEW_S, MAX_LIFETIME_S

COMMANDS_FILE = "commands.sqlite3"
# Central sends a handful of commands a minute; 10,000 ids cover hours of a busy line and a
# few megabytes of disk at most.
MAX_IDS = 10_000
# Ids are kept this long: any duplicate older than that is refused as expired.
KEEP_S = MAX_LIFETIME_S + 2 * CLOCK_SKEW_S
# Pruning runs once in this many inserts (it is a DELETE over an index: cheap, but not free).
PRUNE_EVERY = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    name TEXT NOT NULL,
    id TEXT NOT NULL,
    at REAL NOT NULL,
    reply TEXT NOT NULL,
    PRIMARY KEY (name, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_at ON seen (at);
"""


class SeenCommands:
    """(command name, id) -> the reply sent, persisted and bounded (see the module doc)."""

    def __init__(self, connection: sqlite3.Connection, *, max_ids: int = MAX_IDS,
                 keep_s: float = KEEP_S):
        self._db = connection
        self._max_ids = max_ids
        self._keep_s = keep_s
        self._since_prune = 0

    @classmethod
    def open(cls, state_dir: Path, **limits: Any) -> SeenCommands:
        connection = sqlite3.connect(Path(state_dir) / COMMANDS_FILE, isolation_level=None,
                                     check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        # A power cut may forget the last ids: the commands they name are then refused only
        # by their expiry, which is what a store in memory gave on every restart.
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.executescript(_SCHEMA)
        seen = cls(connection, **limits)
        seen.prune()
        return seen

    @classmethod
    def in_memory(cls, **limits: Any) -> SeenCommands:
        """For tests and tools that have no state directory."""
        connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        connection.executescript(_SCHEMA)
        return cls(connection, **limits)

    def get(self, name: str, command_id: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT reply FROM seen WHERE name = ? AND id = ?",
                               (name, command_id)).fetchone()
        return None if row is None else json.loads(row[0])

    def remember(self, name: str, command_id: str, reply: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO seen VALUES (?, ?, ?, ?)",
                         (name, command_id, time.time(), json.dumps(reply)))
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self.prune()

    def prune(self) -> None:
        """Forget ids past their keeping time, then the oldest beyond MAX_IDS."""
        self._since_prune = 0
        with self._db:
            self._db.execute("DELETE FROM seen WHERE at < ?", (time.time() - self._keep_s,))
            self._db.execute(
                "DELETE FROM seen WHERE at <= (SELECT at FROM seen ORDER BY at DESC "
                "LIMIT 1 OFFSET ?)", (self._max_ids,))

    def __len__(self) -> int:
        return self._db.execute("SELECT count(*) FROM seen").fetchone()[0]

    def close(self) -> None:
        self._db.close()
