"""The one thing plugins, adapters and TD scripts import to talk to the EdiDub daemon.

    from edidub_engine.client import Client

    with Client() as daemon:                      # tcp://127.0.0.1:47610, or $EDIDUB_DAEMON
        job_id, = daemon.submit(shot, priority="interactive")
        clip = daemon.wait(job_id, progress=lambda ev: print(ev.stage, ev.frames_done, ev.frames_total))

A small synchronous client over wire protocol v1 (``docs/protocol.md``).  It
needs only pyzmq and msgpack — no torch, numpy or PyAV — because it runs inside
DaVinci Resolve's and Premiere's Python.  Every call has a timeout; when no
daemon answers it raises :class:`DaemonDownError` (code ``DAEMON_DOWN``; its hint
says when the connection file was left by a daemon that no longer runs), and
when the daemon refuses the CURVE handshake (wrong server key, or this client's
key not authorised) :class:`AuthFailedError` (code ``AUTH_FAILED``) as soon as
the socket monitor reports it.  Either way, a connection file that changed since
it was read (the daemon started again on other ports, or with new keys) is read
again and the request sent once more.  Errors
the daemon sends come back as the matching :class:`~edidub_engine.errors.EdidubError`
subclass with the wire's ``code`` (``FORBIDDEN``, ``NOT_FOUND``, ``NO_FACE``…).

One ``Client`` is for one thread (ZeroMQ sockets are not thread-safe).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from dataclasses import dataclass, field

from edidub_engine.daemon.connection import ConnectionInfo, daemon_alive, default_connection_path, is_local_endpoint, read_connection
from edidub_engine.daemon.protocol import (
    DEFAULT_REQUEST_PORT,
    AuthFailedError,
    CancelReply,
    DaemonDownError,
    EventKind,
    HelloReply,
    JobEvent,
    JobState,
    JobView,
    Message,
    ModelInfo,
    Priority,
    ProtocolError,
    error_from_wire,
    from_wire,
)
from edidub_engine.errors import EdidubError
from edidub_engine.shot import RenderedClip, ShotRequest

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_ENV",
    "AuthFailedError",
    "Client",
    "DaemonDownError",
    "JobEvent",
    "JobState",
    "JobView",
    "Priority",
    "RenderedClip",
    "ShotRequest",
    "TimelineBatch",
    "TimelineResult",
    "WaitTimeoutError",
]

ENDPOINT_ENV = "EDIDUB_DAEMON"
DEFAULT_ENDPOINT = f"tcp://127.0.0.1:{DEFAULT_REQUEST_PORT}"
_HANDSHAKE_FAILED = {zmq.EVENT_HANDSHAKE_FAILED_AUTH, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL}
_TERMINAL_EVENT = {JobState.DONE: EventKind.DONE, JobState.FAILED: EventKind.FAILED, JobState.CANCELLED: EventKind.CANCELLED}


class WaitTimeoutError(EdidubError):
    """``wait``/``events`` gave up before the job finished (the job goes on in the daemon)."""

    code = "TIMEOUT"
    exit_status = 12


@dataclass(frozen=True)
class TimelineBatch:
    """What ``submit_timeline`` queued: a job per shot (timeline order) and the clips left out."""

    batch_id: str
    job_ids: list[str]
    shot_ids: list[str]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TimelineResult:
    """A finished batch: ``timeline`` is the dubbed timeline's otio_json text (``otio_timeline()`` parses it)."""

    batch_id: str
    timeline: str
    dubbed: list[str]
    failed: list[dict[str, Any]] = field(default_factory=list)

    def otio_timeline(self):
        import opentimelineio as otio

        return otio.adapters.read_from_string(self.timeline, adapter_name="otio_json")


@dataclass
class _Link:
    """What the socket monitor has said of the connection: tells a refused handshake from a daemon that is not there."""

    connected: bool = False
    handshake_ok: bool = False
    handshake_failed: bool = False
    key_refused: bool = False  # the daemon's authenticator refused this client's key (ZAP status 400)
    dropped_before_handshake: bool = False

    def read(self, monitor: zmq.Socket) -> None:
        while True:
            try:
                event = recv_monitor_message(monitor, zmq.NOBLOCK)["event"]
            except zmq.Again:
                return
            if event == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.handshake_ok = True
            elif event in _HANDSHAKE_FAILED:
                self.handshake_failed = True
                self.key_refused = self.key_refused or event == zmq.EVENT_HANDSHAKE_FAILED_AUTH
            elif event == zmq.EVENT_DISCONNECTED and self.connected and not self.handshake_ok:
                self.dropped_before_handshake = True


def _key_text(key: str | bytes | os.PathLike) -> bytes:
    """A Z85 public key, given as 40 characters or as the path of a ``.key`` file from ``edidub keys new``."""
    if isinstance(key, (str, bytes)) and len(key) == 40:
        return key.encode() if isinstance(key, str) else key
    from zmq import auth as zmq_auth

    public, _secret = zmq_auth.load_certificate(os.fspath(key))
    return public


class Client:
    """A connection to one daemon.

    ``endpoint``: the daemon's request socket (default ``$EDIDUB_DAEMON``, else
    the one in the connection file, else ``tcp://127.0.0.1:47610``).
    ``connection_file``: the file ``edidub serve`` writes for local
    authentication (default ``$EDIDUB_CONNECTION_FILE`` or
    ``~/.local/share/edidub/daemon/connection.json``); its keys are used for the
    endpoint it names and for any other local endpoint, so a local client
    needs no configuration.  ``server_key``: the daemon's public key (Z85
    text or its ``server.key`` file) — for a daemon elsewhere that uses CURVE;
    it wins over the connection file.
    ``client_key``: this client's ``.key_secret`` file, needed only when the
    daemon keeps an allow-list; without it a throw-away key pair is used.
    ``timeout_s`` bounds every request.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        timeout_s: float = 10.0,
        server_key: str | bytes | os.PathLike | None = None,
        client_key: str | os.PathLike | None = None,
        events_endpoint: str | None = None,
        name: str = "edidub_engine.client",
        connection_file: str | os.PathLike | None = None,
    ):
        self.connection_path = Path(connection_file).expanduser() if connection_file is not None else default_connection_path()
        connection = read_connection(self.connection_path) if server_key is None else None
        self._endpoint_from_file = not (endpoint or os.environ.get(ENDPOINT_ENV))
        self.endpoint = endpoint or os.environ.get(ENDPOINT_ENV) or (connection.requests if connection and connection.requests else DEFAULT_ENDPOINT)
        if connection is not None and not (connection_file is not None or self.endpoint == connection.requests or is_local_endpoint(self.endpoint)):
            connection = None  # a daemon elsewhere: the local file's keys are not its keys
        self.connection: ConnectionInfo | None = None  # the connection file's keys in use, if any
        self.timeout_s = float(timeout_s)
        self.session = uuid.uuid4().hex
        self.name = name
        self._server_key = _key_text(server_key) if server_key is not None else None
        self._client_keys: tuple[bytes, bytes] | None = None
        self._events_endpoint = events_endpoint
        self._events_from_file = events_endpoint is None
        self._client_keys_from_file = client_key is None
        if client_key is not None:
            from zmq import auth as zmq_auth

            public, secret = zmq_auth.load_certificate(os.fspath(client_key))
            if not secret:
                raise EdidubError(f"{client_key} holds no secret key", hint="pass the .key_secret file, not the .key")
            self._client_keys = (public, secret)
        if connection is not None:
            self._adopt(connection)
        elif self._server_key is not None and self._client_keys is None:
            self._client_keys = zmq.curve_keypair()
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._link = _Link()
        self._sent = False  # whether the last request left this client (then it is never sent again)

    def _adopt(self, connection: ConnectionInfo) -> None:
        """Use a connection file's server key and client pair, and its endpoints where none other was named."""
        self.connection = connection
        if self._endpoint_from_file and connection.requests:
            self.endpoint = connection.requests
        self._server_key = connection.server_public_key.encode()
        if self._client_keys_from_file:
            self._client_keys = (connection.client_public_key.encode(), connection.client_secret_key.encode())
        if self._events_from_file:
            self._events_endpoint = connection.events if self.endpoint == connection.requests and connection.events else None

    def _reread_connection(self) -> bool:
        """After no answer: a daemon started again since the file was read may listen elsewhere or hold new keys
        (a file that became readable by others gets new ones).  True when the file changed and is now in use."""
        if self.connection is None:
            return False
        fresh = read_connection(self.connection_path)
        if fresh is None or fresh == self.connection:
            return False
        self._drop_socket()
        self._adopt(fresh)
        return True

    # -- life cycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the sockets; safe to call twice."""
        self._drop_socket()
        if self._context is not None:
            self._context.term()
            self._context = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _secure(self, sock: zmq.Socket) -> None:
        if self._server_key is not None:
            sock.curve_serverkey = self._server_key
            sock.curve_publickey, sock.curve_secretkey = self._client_keys

    def _connect(self) -> zmq.Socket:
        if self._context is None:
            raise EdidubError("this client is closed")
        if self._socket is None:
            sock = self._context.socket(zmq.DEALER)
            sock.linger = 0
            sock.immediate = True  # queue nothing for a daemon that is not there: no stale request reaches it later
            self._secure(sock)
            self._monitor = sock.get_monitor_socket(
                zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH
                | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
            )
            sock.connect(self.endpoint)
            self._socket = sock
            self._link = _Link()
        return self._socket

    def _drop_socket(self) -> None:
        """After a timeout the socket's state is unknown: start afresh next time."""
        if self._socket is not None:
            try:
                self._socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._socket.close(linger=0)
            self._socket = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    def _writable(self, sock: zmq.Socket, deadline: float) -> bool:
        """Wait until the handshake is done and a request can go (``immediate``: nothing is queued before): True; False
        as soon as the monitor reports a failed handshake (no use waiting: the keys will not change), or at the deadline."""
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLOUT)
        poller.register(self._monitor, zmq.POLLIN)
        while (remaining := deadline - time.monotonic()) > 0:
            ready = dict(poller.poll(max(1, int(remaining * 1000))))
            if self._monitor in ready:
                self._link.read(self._monitor)
                if self._link.handshake_failed:
                    return False
            if sock in ready:
                return True
        return False

    def _no_answer(self, waited_s: float, action: str) -> DaemonDownError:
        link = self._link
        if self._monitor is not None:
            link.read(self._monitor)
        self._drop_socket()
        details = {"endpoint": self.endpoint, "waited_s": round(waited_s, 3), "request": action}
        if link.handshake_failed or link.dropped_before_handshake:
            # the daemon's authenticator refused this client's key; or the handshake itself failed (wrong server key, no keys)
            details["handshake"] = "client_key_refused" if link.key_refused else "failed"
            if self.connection is not None:
                hint = (f"this client used the keys of {self.connection_path}; a daemon started with --no-auth, or with "
                        "another connection file (--connection-file), refuses them: connect with the matching file")
            elif self._server_key is None:
                hint = (f"the daemon admits only its own user: run this as the user who started it (the daemon writes its keys "
                        f"to {self.connection_path}, readable by that user only), or start it with --no-auth on a single-user machine")
            else:
                hint = ("check the server key (server.key from `edidub keys new`), and that this client's key is in the "
                        "daemon's authorized_clients folder if it has one; a daemon without CURVE refuses keyed clients too")
            return AuthFailedError(f"the EdiDub daemon at {self.endpoint} refused the secure handshake", hint=hint, details=details)
        if link.connected and link.handshake_ok:
            return DaemonDownError(
                f"the EdiDub daemon at {self.endpoint} did not answer {action} within {waited_s:.1f} s",
                hint="it may be overloaded or stuck; check its log, or raise timeout_s",
                details=details,
            )
        hint = "start one with `edidub serve --media-root DIR`, or point the client at it (endpoint= or $EDIDUB_DAEMON)"
        if self.connection is not None and daemon_alive(self.connection) is False:
            hint = (f"{self.connection_path} was left by a daemon (pid {self.connection.pid}) that is no longer running; "
                    "start one with `edidub serve --media-root DIR`")
            details["stale_connection_file"] = str(self.connection_path)
        return DaemonDownError(f"no EdiDub daemon answered at {self.endpoint} within {waited_s:.1f} s", hint=hint, details=details)

    # -- one request ------------------------------------------------------------------------------
    def request(self, action: str, content: dict[str, Any] | None = None, *, timeout_s: float | None = None) -> dict[str, Any]:
        """Send ``<action>_request`` and return the ok reply's content; raise the daemon's error otherwise.

        When the request could not be sent (no daemon, or the handshake failed) and the connection file has changed
        since it was read — the daemon was started again, on other ports or with new keys — it is read again and the
        request sent once more.  A request that was sent and not answered is never sent twice.
        """
        try:
            return self._request_once(action, content, timeout_s)
        except DaemonDownError:
            if self._sent or not self._reread_connection():
                raise
        return self._request_once(action, content, timeout_s)

    def _request_once(self, action: str, content: dict[str, Any] | None, timeout_s: float | None) -> dict[str, Any]:
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        sock = self._connect()
        message = Message.make(f"{action}_request", content or {}, session=self.session)
        started = time.monotonic()
        deadline = started + timeout
        self._sent = False
        try:
            if not self._writable(sock, deadline):
                raise zmq.Again
            sock.send(message.pack(), zmq.NOBLOCK)
        except zmq.Again:
            raise self._no_answer(time.monotonic() - started, action) from None
        self._sent = True
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
                raise self._no_answer(time.monotonic() - started, action)
            data = sock.recv_multipart()[-1]
            try:
                reply = Message.unpack(data)
            except ProtocolError:
                continue
            parent = reply.parent_header
            if not isinstance(parent, type(message.header)) or parent.msg_id != message.header.msg_id:
                continue  # a late answer to an earlier request that timed out
            if reply.content.get("status") == "ok":
                return reply.content
            raise error_from_wire(reply.content)

    # -- the API ----------------------------------------------------------------------------------
    def hello(self) -> HelloReply:
        """Versions, capabilities, devices, models and the events endpoint."""
        return from_wire(HelloReply, self.request("hello", {"client": self.name}), "hello_reply")

    def submit(self, shots: ShotRequest | dict | Sequence[ShotRequest | dict], *, priority: Priority | str = Priority.BATCH) -> list[str]:
        """Queue one or many shots (all or none); returns their job ids at once, in order.

        ``priority="interactive"`` (an editor waiting on "Dub shot") runs before queued batch jobs.
        """
        if isinstance(shots, (ShotRequest, dict)):
            shots = [shots]
        wire = [(s if isinstance(s, ShotRequest) else ShotRequest.from_dict(s)).to_dict() for s in shots]
        content = self.request("submit", {"shots": wire, "priority": Priority(priority).value})
        return list(content["job_ids"])

    def adapt(self, name: str, clips: Sequence[dict | tuple], *, base: str | None = None, steps: int | None = None,
              minutes: float | None = None, validate_every: int = 100, priority: Priority | str = Priority.BATCH) -> tuple[str, str]:
        """Queue an actor adaptation: ``clips`` as ``{"path", "start_frame", "end_frame"}`` maps or ``(path, start, end)``
        tuples (absolute paths under the daemon's media roots). Returns ``(job_id, bundle_path)``; when the job is done
        the bundle ``name`` is served and :meth:`adapted` gives its figures."""
        wire = [c if isinstance(c, dict) else {"path": str(c[0]), "start_frame": int(c[1]), "end_frame": c[2]} for c in clips]
        content = self.request("adapt", {"name": name, "clips": wire, "base": base, "steps": steps, "minutes": minutes,
                                         "validate_every": validate_every, "priority": Priority(priority).value})
        return content["job_id"], content["bundle_path"]

    def adapted(self, job_id: str) -> dict[str, Any]:
        """A finished adapt job's bundle: name, path, validation before and after, steps; raises its error if it failed."""
        return dict(self.request("result", {"job_id": job_id})["bundle"])

    def submit_timeline(
        self,
        timeline: Any,
        *,
        dub_track: str,
        picture_tracks: str | Sequence[str] | None = None,
        language: str = "FR",
        output_dir: str | os.PathLike | None = None,
        codec: str = "prores_hq",
        options: dict[str, Any] | None = None,
        handles: int | None = 12,
        priority: Priority | str = Priority.BATCH,
    ) -> TimelineBatch:
        """Queue every shot of an OTIO timeline (a ``Timeline`` or its otio_json text); all or none.

        The daemon converts the timeline with ``otio_adapters`` (the clips with dub speech under them on
        ``dub_track``), checks every shot's paths against its media roots, and answers at once with a
        job id per shot and the batch id; ``wait_timeline(batch)`` (or ``timeline_result(batch_id)``
        once the jobs ended) returns the dubbed timeline.
        """
        if not isinstance(timeline, str):
            import opentimelineio as otio

            timeline = otio.adapters.write_to_string(timeline, adapter_name="otio_json")
        if isinstance(picture_tracks, str):
            picture_tracks = [picture_tracks]
        content: dict[str, Any] = {
            "timeline": timeline, "dub_track": dub_track, "language": language, "codec": codec, "handles": handles,
            "priority": Priority(priority).value,
        }
        if picture_tracks is not None:
            content["picture_tracks"] = list(picture_tracks)
        if output_dir is not None:
            content["output_dir"] = os.fspath(output_dir)
        if options is not None:
            content["options"] = dict(options)
        reply = self.request("submit_timeline", content, timeout_s=max(self.timeout_s, 30.0))
        return TimelineBatch(reply["batch_id"], list(reply["job_ids"]), list(reply["shot_ids"]), list(reply.get("skipped") or []),
                             list(reply.get("warnings") or []))

    def timeline_result(self, batch_id: str) -> TimelineResult:
        """The dubbed timeline of a batch whose jobs have all ended (BusyError before); ``failed`` lists shots left out."""
        reply = self.request("result", {"batch_id": batch_id}, timeout_s=max(self.timeout_s, 30.0))
        return TimelineResult(reply["batch_id"], reply["timeline"], list(reply.get("dubbed") or []), list(reply.get("failed") or []))

    def wait_timeline(
        self,
        batch: TimelineBatch,
        *,
        progress: Callable[[str, JobEvent], None] | None = None,
        timeout_s: float | None = None,
    ) -> TimelineResult:
        """Wait for every job of ``batch`` (``progress(shot_id, event)`` on the way), then return the dubbed timeline.

        A failed or cancelled shot does not raise: it is left off the dub track and listed in ``failed``.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for shot_id, job_id in zip(batch.shot_ids, batch.job_ids):
            left = None if deadline is None else max(0.001, deadline - time.monotonic())
            for event in self.events(job_id, timeout_s=left):
                if progress is not None:
                    progress(shot_id, event)
        return self.timeline_result(batch.batch_id)

    def status(self, job_id: str) -> JobView:
        return from_wire(JobView, self.request("status", {"job_id": job_id})["job"], "status_reply.job")

    def result(self, job_id: str) -> RenderedClip:
        """The rendered clip of a finished job; raises the job's error if it failed, BusyError if not finished."""
        return RenderedClip.from_dict(self.request("result", {"job_id": job_id})["clip"])

    def cancel(self, job_id: str) -> CancelReply:
        """Cancel a job: a queued one at once, a running one at its next step (watch for the cancelled event)."""
        return from_wire(CancelReply, self.request("cancel", {"job_id": job_id}), "cancel_reply")

    def list_jobs(self, *, states: Sequence[JobState | str] | None = None, limit: int = 100) -> list[JobView]:
        content: dict[str, Any] = {"limit": limit}
        if states is not None:
            content["states"] = [JobState(s).value for s in states]
        return [from_wire(JobView, j, "list_jobs_reply.jobs") for j in self.request("list_jobs", content)["jobs"]]

    def models(self) -> list[ModelInfo]:
        return [from_wire(ModelInfo, m, "models_reply.models") for m in self.request("models")["models"]]

    def shutdown(self) -> None:
        """Stop the daemon (accepted from this machine only); a running job resumes on its next start."""
        self.request("shutdown")

    def events(self, job_id: str, *, timeout_s: float | None = None, poll_s: float = 1.0) -> Iterator[JobEvent]:
        """Yield the job's events until it is done, failed or cancelled.

        Events come from the daemon's PUB socket; ``status`` is asked every
        ``poll_s`` seconds without an event, so a missed event (a PUB drops
        messages for slow or late subscribers) never stalls the wait.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        sub = self._subscribe(job_id)
        try:
            view = self.status(job_id)  # after subscribing: nothing between the two is lost
            yield _event_from_view(view)
            if view.state.terminal:
                return
            while True:
                wait = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
                if wait <= 0:
                    raise WaitTimeoutError(f"job {job_id} did not finish within {timeout_s} s", details={"job_id": job_id})
                if sub.poll(int(wait * 1000), zmq.POLLIN):
                    _topic, data = sub.recv_multipart()[:2]
                    try:
                        event = from_wire(JobEvent, Message.unpack(data).content, "job_event")
                    except EdidubError:
                        continue
                else:
                    event = _event_from_view(self.status(job_id))
                    if not event.state.terminal:
                        continue
                yield event
                if event.state.terminal:
                    return
        finally:
            sub.close(linger=0)

    def wait(self, job_id: str, *, progress: Callable[[JobEvent], None] | None = None, timeout_s: float | None = None) -> RenderedClip:
        """Block until the job ends; call ``progress(event)`` on the way; return its clip or raise its error."""
        for event in self.events(job_id, timeout_s=timeout_s):
            if progress is not None:
                progress(event)
        return self.result(job_id)

    def dub(self, shot: ShotRequest | dict, *, progress: Callable[[JobEvent], None] | None = None, timeout_s: float | None = None) -> RenderedClip:
        """Submit one shot as interactive and wait for it: the plugins' "Dub shot"."""
        (job_id,) = self.submit(shot, priority=Priority.INTERACTIVE)
        return self.wait(job_id, progress=progress, timeout_s=timeout_s)

    # -- events -----------------------------------------------------------------------------------
    def events_endpoint(self) -> str:
        """The daemon's PUB endpoint (asked once with ``hello``); a wildcard host becomes the request endpoint's host."""
        if self._events_endpoint is None:
            reported = self.hello().events_endpoint
            scheme, _, rest = reported.partition("://")
            if scheme == "tcp":
                host, _, port = rest.rpartition(":")
                if host in ("0.0.0.0", "*", "[::]", "::"):
                    request_host = self.endpoint.partition("://")[2].rpartition(":")[0]
                    reported = f"tcp://{request_host}:{port}"
            self._events_endpoint = reported
        return self._events_endpoint

    def _subscribe(self, job_id: str) -> zmq.Socket:
        endpoint = self.events_endpoint()
        sub = self._context.socket(zmq.SUB)
        sub.linger = 0
        self._secure(sub)
        sub.setsockopt(zmq.SUBSCRIBE, f"job.{job_id}".encode())
        sub.connect(endpoint)
        return sub


def _event_from_view(view: JobView) -> JobEvent:
    kind = _TERMINAL_EVENT.get(view.state) or (EventKind.QUEUED if view.state is JobState.QUEUED else EventKind.PROGRESS)
    return JobEvent(
        job_id=view.job_id,
        event=kind,
        state=view.state,
        frames_done=view.frames_done,
        frames_total=view.frames_total,
        stage=view.stage,
        eta_s=view.eta_s,
        output_path=view.output_path,
        error=view.error,
    )

