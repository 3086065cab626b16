"""The daemon's job store: every job, its request, state, timings, result and error, in SQLite (WAL).

The store *is* the queue: a worker claims the next job with one conditional
UPDATE (priority, then submission order), so there is no second copy of the
queue in memory to lose.  Every state change is one transaction, committed
before anyone is told about it (a job id returned by ``submit`` survives a
kill -9 of the daemon).  WAL with ``synchronous=NORMAL`` is durable against a
process crash (the case we design for); only a power loss can drop the last
transactions.  Per-frame progress is *not* stored — it changes many times a
second and is worth nothing after a restart; the server keeps it in memory.

One connection, guarded by a lock, serves the socket loop and the workers:
each call is short, and one writer is what SQLite wants anyway.  An advisory
lock on ``<store>.lock`` stops a second daemon from opening the same store
(its recovery would re-queue jobs the first one is running).

The store holds every shot's paths and options, so it is private to its owner
as the connection file is: created 0600 (SQLite gives its ``-wal`` and ``-shm``
files the database's mode) in a folder made 0700, and an older store that was
readable by others is made private when opened.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edidub_engine.daemon.protocol import JobState, Priority
from edidub_engine.errors import InvalidArgumentError

__all__ = ["BatchRecord", "JobRecord", "JobStore", "StoreLockedError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           TEXT NOT NULL UNIQUE,
    shot_id          TEXT NOT NULL,
    priority         INTEGER NOT NULL,          -- 0 interactive, 1 batch
    state            TEXT NOT NULL,
    request          TEXT NOT NULL,             -- ShotRequest.to_dict() as JSON, paths resolved
    output_path      TEXT,
    submitted_at     REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    stage            TEXT,                      -- progress when the job ended (live progress is in memory)
    frames_done      INTEGER NOT NULL DEFAULT 0,
    frames_total     INTEGER NOT NULL DEFAULT 0,
    result           TEXT,                      -- RenderedClip.to_dict() as JSON
    error            TEXT,                      -- {code, message, details} as JSON
    session          TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(state, priority, seq);
CREATE INDEX IF NOT EXISTS jobs_output ON jobs(output_path, state);
CREATE TABLE IF NOT EXISTS batches (            -- submit_timeline: a timeline and the jobs of its shots
    batch_id         TEXT PRIMARY KEY,
    submitted_at     REAL NOT NULL,
    session          TEXT,
    job_ids          TEXT NOT NULL,             -- JSON list, in shot order
    record           TEXT NOT NULL              -- JSON: timeline (otio_json), language, settings, shot_ids, skipped…
);
"""
_USER_VERSION = 1
_ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


class StoreLockedError(InvalidArgumentError):
    """Another daemon has this store open."""


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    seq: int
    shot_id: str
    priority: Priority
    state: JobState
    request: dict[str, Any]
    output_path: str | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    cancel_requested: bool
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    stage: str | None = None
    frames_done: int = 0
    frames_total: int = 0


@dataclass(frozen=True)
class BatchRecord:
    """A ``submit_timeline`` batch: its job ids (shot order) and what its result needs (``record``)."""

    batch_id: str
    submitted_at: float
    job_ids: list[str]
    record: dict[str, Any]


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        seq=row["seq"],
        shot_id=row["shot_id"],
        priority=Priority.INTERACTIVE if row["priority"] == 0 else Priority.BATCH,
        state=JobState(row["state"]),
        request=json.loads(row["request"]),
        output_path=row["output_path"],
        submitted_at=row["submitted_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        cancel_requested=bool(row["cancel_requested"]),
        result=json.loads(row["result"]) if row["result"] else None,
        error=json.loads(row["error"]) if row["error"] else None,
        stage=row["stage"],
        frames_done=row["frames_done"],
        frames_total=row["frames_total"],
    )


class JobStore:
    """``JobStore(path)`` opens (or creates) the store; :meth:`close` releases it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser().absolute()
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True, mode=0o700)
        self._make_private()
        self._lock_fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise StoreLockedError(
                f"job store {self.path} is in use by another EdiDub daemon",
                hint="stop that daemon first, or give this one its own --store",
            ) from None
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_USER_VERSION}")

    def _make_private(self) -> None:
        """Create the database file 0600 before SQLite opens it; tighten one an older version left readable."""
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            for part in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
                if part.exists() and part.stat().st_mode & 0o077:
                    os.chmod(part, 0o600)
        except OSError as exc:
            raise InvalidArgumentError(f"job store {self.path} cannot be opened by this user ({exc.strerror})",
                                       hint="give this daemon a store of its own with --store PATH") from None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)

    # -- writes -------------------------------------------------------------------------------
    def add(
        self,
        jobs: list[tuple[str, dict[str, Any], str | None]],
        priority: Priority,
        *,
        session: str = "",
        batch: tuple[str, dict[str, Any]] | None = None,
    ) -> list[str]:
        """Queue ``(shot_id, request, output_path)`` jobs in one transaction; returns their ids in order.

        ``batch=(batch_id, record)`` records a ``submit_timeline`` batch of these jobs in the same transaction.
        """
        now = time.time()
        ids = [uuid.uuid4().hex for _ in jobs]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO jobs (job_id, shot_id, priority, state, request, output_path, submitted_at, session) VALUES (?,?,?,?,?,?,?,?)",
                    [
                        (job_id, shot_id, priority.rank, JobState.QUEUED.value, json.dumps(request), output, now, session)
                        for job_id, (shot_id, request, output) in zip(ids, jobs)
                    ],
                )
                if batch is not None:
                    self._db.execute(
                        "INSERT INTO batches (batch_id, submitted_at, session, job_ids, record) VALUES (?,?,?,?,?)",
                        (batch[0], now, session, json.dumps(ids), json.dumps(batch[1])),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def claim_next(self) -> JobRecord | None:
        """Mark the most urgent queued job running and return it (None when the queue is empty)."""
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET state=?, started_at=?, attempts=attempts+1 WHERE seq = "
                "(SELECT seq FROM jobs WHERE state=? ORDER BY priority, seq LIMIT 1) RETURNING *",
                (JobState.RUNNING.value, time.time(), JobState.QUEUED.value),
            ).fetchone()
        return _record(row) if row else None

    def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        progress: tuple[str | None, int, int] = (None, 0, 0),
    ) -> None:
        """Record a job's end: its state, result or error, and its last ``(stage, frames_done, frames_total)``."""
        assert state.terminal
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state=?, finished_at=?, result=?, error=?, stage=?, frames_done=?, frames_total=? WHERE job_id=?",
                (state.value, time.time(), json.dumps(result) if result else None, json.dumps(error) if error else None, *progress, job_id),
            )

    def requeue(self, job_id: str) -> None:
        """Put a running job back at the head of its priority (it keeps its submission order)."""
        with self._lock:
            self._db.execute("UPDATE jobs SET state=?, started_at=NULL WHERE job_id=? AND state=?", (JobState.QUEUED.value, job_id, JobState.RUNNING.value))

    def cancel(self, job_id: str) -> JobRecord | None:
        """Cancel a queued job at once; flag a running one (its worker stops at the next step)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE jobs SET state=?, finished_at=?, cancel_requested=1 WHERE job_id=? AND state=?",
                    (JobState.CANCELLED.value, time.time(), job_id, JobState.QUEUED.value),
                )
                self._db.execute("UPDATE jobs SET cancel_requested=1 WHERE job_id=? AND state=?", (job_id, JobState.RUNNING.value))
                row = self._db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return _record(row) if row else None

    def recover(self) -> tuple[list[JobRecord], list[JobRecord]]:
        """After a crash: jobs left running go back to the queue (or to cancelled, if that was asked).

        Returns ``(requeued, cancelled)``.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cancelled = self._db.execute(
                    "UPDATE jobs SET state=?, finished_at=? WHERE state=? AND cancel_requested=1 RETURNING *",
                    (JobState.CANCELLED.value, time.time(), JobState.RUNNING.value),
                ).fetchall()
                requeued = self._db.execute(
                    "UPDATE jobs SET state=?, started_at=NULL WHERE state=? RETURNING *", (JobState.QUEUED.value, JobState.RUNNING.value)
                ).fetchall()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [_record(r) for r in requeued], [_record(r) for r in cancelled]

    # -- reads --------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id=?", (job_id,)).fetchone()
        return _record(row) if row else None

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        if row is None:
            return None
        return BatchRecord(row["batch_id"], row["submitted_at"], json.loads(row["job_ids"]), json.loads(row["record"]))

    def list(self, states: list[JobState] | None = None, limit: int = 100) -> list[JobRecord]:
        """Newest first."""
        sql, args = "SELECT * FROM jobs", []
        if states:
            sql += f" WHERE state IN ({','.join('?' * len(states))})"
            args = [s.value for s in states]
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, int(limit))).fetchall()
        return [_record(r) for r in rows]

    def count_active(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN (?,?)", _ACTIVE).fetchone()[0]

    def active_outputs(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` a queued or running job will write."""
        if not paths:
            return set()
        with self._lock:
            rows = self._db.execute(
                f"SELECT output_path FROM jobs WHERE state IN (?,?) AND output_path IN ({','.join('?' * len(paths))})", (*_ACTIVE, *paths)
            ).fetchall()
        return {r[0] for r in rows}
