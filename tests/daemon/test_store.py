"""The job store on disk: private to its owner, like the connection file (issue 33), on the real `edidub serve`."""

from __future__ import annotations

import os
import stat

from edidub_engine.client import Client

from daemon_helpers import spawn_daemon
from runners import FOOTAGE


def test_the_job_store_is_private_to_its_owner(tmp_path):
    """The store holds every shot's paths and options: 0600 like the connection file, even in a folder others may read
    (before: 0644 under the usual umask); a store an older version left readable is made private when the daemon opens it."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    store = shared / "jobs.sqlite3"
    old = shared / "old.sqlite3"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    for path in (store, old):
        proc, ready = spawn_daemon(path, [FOOTAGE, tmp_path])
        try:
            with Client(timeout_s=10) as client:
                client.list_jobs()
            parts = [p for p in (path, shared / f"{path.name}-wal", shared / f"{path.name}-shm") if p.exists()]
            assert len(parts) == 3, parts  # WAL mode: the database and its two companions
            assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in parts} == {p.name: "0o600" for p in parts}
        finally:
            proc.terminate()
            proc.wait(30)

