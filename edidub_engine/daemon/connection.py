"""The connection file: how a local client proves it runs as the daemon's user (as Jupyter's kernels do).

``edidub serve`` writes ``~/.local/share/edidub/daemon/connection.json`` (or
``$EDIDUB_CONNECTION_FILE``), mode 0600 in a 0700 folder, holding its
endpoints and two CURVE key pairs: the daemon's and one client pair.  Every
socket of the daemon is CURVE-encrypted and its authenticator (ZAP) admits
only that client key (plus the keys of an ``--keys`` allow-list).  So a
process that cannot read the file — another user on a shared workstation or
render node — cannot talk to the daemon, even on loopback, and a client
verifies it talks to the real daemon and not to a process that took its port.
:class:`edidub_engine.client.Client` reads the file on its own, which is how
the Resolve scripts, the Premiere bridge and ``edidub batch`` find the daemon
without configuration.

The keys are kept across restarts (only the endpoints and pid change), so a
panel that is open while the daemon restarts reconnects.  ``edidub serve
--no-auth`` skips all of this, for single-user machines.

Only the standard library and pyzmq: this module runs inside Resolve's and
Premiere's Python too.
"""

from __future__ import annotations

import ipaddress
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from edidub_engine.files import write_text_atomically

__all__ = ["CONNECTION_ENV", "CONNECTION_FORMAT", "ConnectionInfo", "daemon_alive", "default_connection_path", "is_local_endpoint", "private_to_owner", "read_connection", "write_connection"]

CONNECTION_ENV = "EDIDUB_CONNECTION_FILE"
CONNECTION_FORMAT = "edidub-connection/1"


def is_local_endpoint(endpoint: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on a loopback address."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: may be reachable from afar


def default_connection_path() -> Path:
    """``$EDIDUB_CONNECTION_FILE``, else ``$XDG_DATA_HOME/edidub/daemon/connection.json`` (else ``~/.local/share/…``)."""
    explicit = os.environ.get(CONNECTION_ENV, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "edidub" / "daemon" / "connection.json"


@dataclass(frozen=True)
class ConnectionInfo:
    """What a client needs to reach one daemon; keys are Z85 text (40 characters)."""

    requests: str
    events: str
    server_public_key: str
    client_public_key: str
    client_secret_key: str
    server_secret_key: str = ""  # absent when the daemon's pair lives in an --keys folder
    pid: int = 0
    format: str = CONNECTION_FORMAT

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def new_keys(cls) -> ConnectionInfo:
        """Fresh key pairs and no endpoints yet."""
        import zmq

        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        return cls(requests="", events="", server_public_key=server_public.decode(), server_secret_key=server_secret.decode(),
                   client_public_key=client_public.decode(), client_secret_key=client_secret.decode())


def _valid_key(text: object) -> bool:
    return isinstance(text, str) and len(text) == 40


def read_connection(path: str | os.PathLike) -> ConnectionInfo | None:
    """The file's contents, or None when it is absent, unreadable (another user's) or not a connection file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != CONNECTION_FORMAT:
        return None
    keys = ("server_public_key", "client_public_key", "client_secret_key")
    if not all(_valid_key(data.get(k)) for k in keys) or not (data.get("server_secret_key", "") == "" or _valid_key(data["server_secret_key"])):
        return None
    try:
        return ConnectionInfo(requests=str(data.get("requests", "")), events=str(data.get("events", "")), pid=int(data.get("pid", 0)),
                              **{k: data[k] for k in keys}, server_secret_key=data.get("server_secret_key", ""))
    except (TypeError, ValueError):
        return None


def daemon_alive(info: ConnectionInfo) -> bool | None:
    """Whether the daemon that wrote ``info`` still runs: the file outlives it (its keys serve the next start).

    False when no process has its pid (the file is stale: its endpoints are dead); None when this
    cannot be told (no pid, Windows).  A live pid may belong to another process after a reboot:
    only the handshake proves the daemon is there.
    """
    if info.pid <= 0 or os.name == "nt":
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: a process of another user has that pid
        return True
    return True


def private_to_owner(path: str | os.PathLike) -> bool:
    """True when ``path`` belongs to this user and nobody else may read or write it (always True on Windows)."""
    if os.name == "nt":
        return True
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not (st.st_mode & (stat.S_IRWXG | stat.S_IRWXO))


def write_connection(path: str | os.PathLike, info: ConnectionInfo) -> Path:
    """Write ``info`` atomically, mode 0600 (a folder it creates: 0700); the file is never readable by others, even briefly."""
    path = Path(path).expanduser()
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True, mode=0o700)
        os.chmod(path.parent, 0o700)  # mkdir's mode passes through the umask
    return write_text_atomically(path, json.dumps(info.to_dict(), indent=2) + "\n", mode=0o600)
