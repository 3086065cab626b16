"""The supervisor's verdicts, kept in SQLite beside the batch (``review.sqlite``).

One row per shot: the two MOS ratings of the paper's study (synchronisation and
naturalness, 1–10), a verdict (approved / rejected / pending), a note, who and
when.  Every save is one transaction, so a page reload, a crash or a second
browser tab never sees half a verdict.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from ...errors import InvalidArgumentError

VERDICTS = ("pending", "approved", "rejected")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    shot_id TEXT PRIMARY KEY,
    sync INTEGER CHECK (sync IS NULL OR sync BETWEEN 1 AND 10),
    naturalness INTEGER CHECK (naturalness IS NULL OR naturalness BETWEEN 1 AND 10),
    verdict TEXT NOT NULL DEFAULT 'pending' CHECK (verdict IN ('pending', 'approved', 'rejected')),
    note TEXT NOT NULL DEFAULT '',
    reviewer TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL
);
"""


def _rating(value, what: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a whole number from 1 to 10, not {value!r}") from None
    if isinstance(value, float) and value != v or not 1 <= v <= 10:
        raise InvalidArgumentError(f"{what} must be a whole number from 1 to 10, not {value!r}")
    return v


class ReviewStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, shot_id: str) -> dict:
        with self._lock:
            row = self._db.execute("SELECT shot_id, sync, naturalness, verdict, note, reviewer, updated_at FROM verdicts WHERE shot_id = ?",
                                   (shot_id,)).fetchone()
        if row is None:
            return {"shot_id": shot_id, "sync": None, "naturalness": None, "verdict": "pending", "note": "", "reviewer": "", "updated_at": None}
        return dict(zip(("shot_id", "sync", "naturalness", "verdict", "note", "reviewer", "updated_at"), row))

    def save(self, shot_id: str, **fields) -> dict:
        """Update some of ``sync``, ``naturalness``, ``verdict``, ``note``, ``reviewer`` of a shot; returns the row."""
        unknown = set(fields) - {"sync", "naturalness", "verdict", "note", "reviewer"}
        if unknown:
            raise InvalidArgumentError(f"unknown review field(s): {', '.join(sorted(unknown))}")
        current = self.get(shot_id)
        if "sync" in fields:
            current["sync"] = _rating(fields["sync"], "the sync rating")
        if "naturalness" in fields:
            current["naturalness"] = _rating(fields["naturalness"], "the naturalness rating")
        if "verdict" in fields:
            if fields["verdict"] not in VERDICTS:
                raise InvalidArgumentError(f"verdict must be one of {', '.join(VERDICTS)}, not {fields['verdict']!r}")
            current["verdict"] = fields["verdict"]
        for key in ("note", "reviewer"):
            if key in fields:
                current[key] = str(fields[key] or "")[:4000]
        current["updated_at"] = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO verdicts (shot_id, sync, naturalness, verdict, note, reviewer, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(shot_id) DO UPDATE SET sync=excluded.sync, naturalness=excluded.naturalness, verdict=excluded.verdict, "
                "note=excluded.note, reviewer=excluded.reviewer, updated_at=excluded.updated_at",
                (shot_id, current["sync"], current["naturalness"], current["verdict"], current["note"], current["reviewer"], current["updated_at"]),
            )
        return current

    def all(self) -> dict[str, dict]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT shot_id FROM verdicts ORDER BY shot_id")]
        return {i: self.get(i) for i in ids}
