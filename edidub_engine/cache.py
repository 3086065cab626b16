"""The inversion cache: what dubbing a shot computes that does not depend on the dub.

The face track, the original speech units and the DDIM inversion of each
section are functions of the source range, the models and the settings alone;
a second language for the same shot reuses them.  Entries are files in a
folder (``$XDG_CACHE_HOME/edidub/inversions`` by default), keyed by a hash of
the source file's identity (real path, size, modification time), the range,
the model bundle and the settings that shape the inversion; the folder is kept
under a size bound by dropping the least recently used entries.  A corrupt or
unreadable entry is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

DEFAULT_MAX_BYTES = 4 * 1024**3


def default_cache_dir() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "edidub" / "inversions"


def source_identity(path: str | os.PathLike) -> dict[str, Any]:
    if not Path(path).exists():  # an image sequence's pattern (media.sequence)
        from .media.sequence import find_sequence, sequence_identity

        files = find_sequence(path)
        if files is not None:
            return sequence_identity(files)
    real = Path(path).resolve()
    stat = real.stat()
    return {"path": str(real), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


class InversionCache:
    """A size-bounded folder of ``torch.save`` entries (tensors and plain data only)."""

    def __init__(self, folder: str | os.PathLike | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES):
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.max_bytes = int(max_bytes)

    @staticmethod
    def key(**parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pt"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except Exception:  # a truncated or foreign file: recompute rather than fail the job
            path.unlink(missing_ok=True)
            return None
        os.utime(path)  # least recently USED goes first
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(entry, fh)
            os.replace(tmp, self._path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._evict()

    def _evict(self) -> None:
        entries = sorted(self.folder.glob("*.pt"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in entries)
        while entries and total > self.max_bytes:
            oldest = entries.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
