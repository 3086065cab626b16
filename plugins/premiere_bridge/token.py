"""The bridge's shared secret: a random token in a file only this user can read.

A Premiere panel cannot set headers on a WebSocket, so the panel's first message carries
the token; any page or program on this machine that cannot read the file cannot use the
bridge (and through it, the daemon).
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

__all__ = ["default_token_path", "ensure_token", "read_token"]

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def default_token_path() -> Path:
    """``$XDG_DATA_HOME/edidub/bridge/premiere.token`` (else ``~/.local/share/…``), beside the daemon's store."""
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "edidub" / "bridge" / "premiere.token"


def read_token(path: Path) -> str | None:
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if _TOKEN.match(text) else None


def ensure_token(path: Path | None = None, *, new: bool = False) -> tuple[str, Path]:
    """Write (or keep) the token file, readable by this user only; returns (token, path).

    The token is kept across restarts so a panel that saved it reconnects on its own;
    ``new=True`` (``--new-token``) replaces it.
    """
    path = Path(path or default_token_path()).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except OSError:
        pass
    token = None if new else read_token(path)
    if token is None:
        token = secrets.token_urlsafe(32)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
        os.replace(tmp, path)
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return token, path
