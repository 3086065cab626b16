"""Small file helpers every part shares: a text file (report, state, card) is replaced whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_text_atomically(path: str | os.PathLike, text: str, *, mode: int = 0o644) -> Path:
    """Write ``text`` to a temp file in the same folder, then rename it over ``path``.

    Readers see the old file or the new one, never half of either; a crash leaves
    at most a hidden ``.<name>.*.partial`` file behind, never a truncated ``path``.
    (Media outputs use :class:`edidub_engine.media.AtomicOutput`, which also refuses
    to replace an existing file.)  ``mode`` 0o600 keeps a secret private: the temp file is
    created 0600 and only ever widened to ``mode``.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomically(path: str | os.PathLike, payload: Any, *, indent: int = 2, sort_keys: bool = False) -> Path:
    """``payload`` as indented JSON through :func:`write_text_atomically`."""
    return write_text_atomically(path, json.dumps(payload, indent=indent, sort_keys=sort_keys) + "\n")
