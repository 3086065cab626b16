"""``edidub review BATCH_DIR``: the review page on a local HTTP server (127.0.0.1 only).

The standard library's threading HTTP server is enough for one supervisor and
a browser; nothing listens beyond the loopback interface.  Requests whose
``Host`` is not the loopback address are refused (a web page elsewhere cannot
reach the server by DNS rebinding), and writes must be JSON ``POST``s, which a
foreign page cannot send without a CORS preflight that this server never
grants.

Loopback is shared by every user of the machine, so, as Jupyter's notebook server
does, each server makes a random token, writes it to a file only its user can read
(:attr:`ReviewServer.token_file`) and answers only requests that carry it: the
printed address has it (``?token=…``), and the page sends it with every request
(``Authorization: token …``, and in its media and export links, which a
``<video>`` element cannot give headers).
"""

from __future__ import annotations

import hmac
import json
import mimetypes
import os
import re
import secrets
import threading
from fractions import Fraction
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from ...errors import EdidubError, InvalidArgumentError
from ...files import write_text_atomically
from ...model_paths import user_models_dir
from .export import export_csv, export_otio, load_batch
from .page import PAGE
from .store import ReviewStore

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


class ReviewServer:
    """Serve one batch folder; ``start()`` runs in a background thread, ``serve_forever()`` in this one."""

    def __init__(self, batch_dir: str | Path, *, host: str = "127.0.0.1", port: int = 0, db_path: str | Path | None = None):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise InvalidArgumentError(f"the review server listens on the loopback interface only, not {host}",
                                       hint="open an SSH tunnel to review from another machine")
        self.batch_dir = Path(batch_dir).expanduser().resolve()
        self.batch = load_batch(self.batch_dir)
        self.token = secrets.token_urlsafe(32)
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        try:
            self.token_file = _write_token_file(default_state_dir(), self)
            self.store = ReviewStore(db_path or self.batch_dir / "review.sqlite")
        except BaseException:
            self.httpd.server_close()
            self.forget_token()
            raise
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    @property
    def url(self) -> str:
        """The page's address with its token: what the owner opens."""
        return f"{self.base_url}?token={self.token}"

    def admits(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.token.encode())

    def forget_token(self) -> None:
        """Remove the token file (the token dies with the server)."""
        token_file = getattr(self, "token_file", None)
        if token_file is not None:
            token_file.unlink(missing_ok=True)

    def media_path(self, index: int, which: str) -> Path | None:
        """The dubbed file, or the original's proxy (its range as H.264) where the set has one, else the original."""
        if not 0 <= index < len(self.batch["shots"]) or which not in ("original", "dubbed"):
            return None
        shot = self.batch["shots"][index]
        value = (which == "original" and shot.get("original_proxy")) or shot.get(which)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else self.batch_dir / path

    def shots(self) -> dict:
        out = []
        for s in self.batch["shots"]:
            rate = Fraction(str(s.get("rate", "25")))
            proxy = bool(s.get("original_proxy")) and (self.batch_dir / s["original_proxy"]).is_file()
            start_s, end_s = float(int(s.get("start_frame", 0)) / rate), float(int(s.get("end_frame", 0)) / rate)
            # a proxy holds the shot's range alone, so it plays from 0; the original from the range's start
            out.append({**s, "start_s": 0.0 if proxy else start_s, "end_s": end_s - start_s if proxy else end_s, "proxy": proxy,
                        "review": self.store.get(s["shot_id"])})
        return {"title": self.batch.get("title", "EdiDub review"), "shots": out}

    def start(self) -> "ReviewServer":
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="edidub-review", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self.httpd.serve_forever()
        finally:
            self.forget_token()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.close()

    def close(self) -> None:
        """Release the socket, the store and the token file (after :meth:`serve_forever` returns)."""
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.store.close()
        self.forget_token()

    def __enter__(self) -> "ReviewServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def default_state_dir() -> Path:
    """``$XDG_DATA_HOME/edidub/review`` (else ``~/.local/share/…``): where each running server's token file lives."""
    return user_models_dir().parent / "review"


def _write_token_file(folder: Path, server: ReviewServer) -> Path:
    """``review-<port>.json`` with the address and token, mode 0600 in a 0700 folder (as Jupyter's runtime files)."""
    folder = folder.expanduser()
    path = folder / f"review-{server.httpd.server_address[1]}.json"
    payload = {"url": server.url, "token": server.token, "batch_dir": str(server.batch_dir), "pid": os.getpid()}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask, and an old folder may be wider
        return write_text_atomically(path, json.dumps(payload, indent=2) + "\n", mode=0o600)
    except OSError as exc:
        raise InvalidArgumentError(f"cannot write the review server's token file {path} ({exc.strerror})",
                                   hint="set XDG_DATA_HOME to a folder of yours") from None


_REFUSED = ("this review server answers only its own user: open the address `edidub review` printed "
            "(it ends in ?token=…); the token is also in {file}")


def _handler_for(server: ReviewServer):
    class Handler(BaseHTTPRequestHandler):
        server_version = "edidub-review"

        def log_message(self, fmt, *args):  # quiet: the terminal shows the URL, not every request
            pass

        # -- helpers
        def _host_ok(self) -> bool:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            return host in _LOOPBACK_HOSTS

        def _refused(self) -> bool:
            """Answer 403 and return True unless the request is on loopback by name and carries the token."""
            if not self._host_ok():
                self._json(HTTPStatus.FORBIDDEN, {"error": "bad Host"})
                return True
            scheme, _, header = (self.headers.get("Authorization") or "").partition(" ")
            given = header.strip() if scheme.lower() == "token" else (parse_qs(urlsplit(self.path).query).get("token") or [None])[0]
            if server.admits(given):
                return False
            self._json(HTTPStatus.FORBIDDEN, {"error": _REFUSED.format(file=server.token_file)})
            return True

        def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        # -- routes
        def do_GET(self):  # noqa: N802
            if self._refused():
                return None
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            if path == "/api/shots":
                return self._json(200, server.shots())
            if path == "/export.csv":
                body = export_csv(server.batch, server.store.all()).encode()
                return self._send(200, body, "text/csv; charset=utf-8", {"Content-Disposition": 'attachment; filename="review.csv"'})
            if path == "/export.otio":
                body = export_otio(server.batch, server.store.all()).to_json_string().encode()
                return self._send(200, body, "application/json", {"Content-Disposition": 'attachment; filename="review.otio"'})
            m = re.fullmatch(r"/media/(\d+)/(original|dubbed)", path)
            if m:
                return self._media(server.media_path(int(m.group(1)), m.group(2)))
            return self._json(404, {"error": "not found"})

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self):  # noqa: N802
            if self._refused():
                return None
            m = re.fullmatch(r"/api/shots/(.+)", urlsplit(self.path).path)
            if not m:
                return self._json(404, {"error": "not found"})
            shot_id = unquote(m.group(1))
            if shot_id not in {s["shot_id"] for s in server.batch["shots"]}:
                return self._json(404, {"error": f"no shot {shot_id!r} in this batch"})
            if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                return self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON"})
            try:
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                fields = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(fields, dict):
                    raise InvalidArgumentError("send a JSON map of fields")
                return self._json(200, server.store.save(shot_id, **fields))
            except (ValueError, EdidubError) as exc:
                return self._json(400, {"error": getattr(exc, "message", str(exc))})

        def _media(self, path: Path | None) -> None:
            if path is None or not path.is_file():
                return self._json(404, {"error": "no such media"})
            size = path.stat().st_size
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            start, end = 0, size - 1
            m = _RANGE.match(self.headers.get("Range") or "")
            status = 200
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(size - 1, int(m.group(2))) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                if start > end:
                    return self._send(416, b"", ctype, {"Content-Range": f"bytes */{size}"})
                status = 206
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if self.command == "HEAD":
                return
            with open(path, "rb") as fh:
                fh.seek(start)
                left = end - start + 1
                try:
                    while left > 0:
                        chunk = fh.read(min(1 << 16, left))
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                        left -= len(chunk)
                except (BrokenPipeError, ConnectionResetError):  # the browser seeks and drops connections
                    pass

    return Handler
