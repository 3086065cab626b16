"""``edidub serve``: the socket loop — a ROUTER for requests, a PUB for job events.

The loop thread only decodes, checks and answers; it never runs a job, so
``status`` is answered while a long shot renders.  Workers (:mod:`.worker`)
push their events to the loop over an inproc PUSH/PULL pair, because a ZeroMQ
socket (here the PUB) must only be used by one thread.

Safety: with a connection file (``edidub serve``'s default, :mod:`.connection`)
every socket is CURVE-encrypted and only a client holding the file's client
key gets in — another local user cannot.  A bind to anything but
loopback/ipc needs CURVE keys (``edidub keys new``); clients must know the
server's public key and hold the connection file's client key or one listed
in ``<keys>/authorized_clients/`` (the server's public key alone admits
nobody).  Paths are checked against the media roots (:mod:`.paths`).  Every malformed message is answered with an error (or, for
impossible framing, dropped) and never stops the loop.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import zmq

from edidub_engine import __version__
from edidub_engine.daemon.admission import check_against_media
from edidub_engine.daemon.connection import ConnectionInfo, is_local_endpoint, private_to_owner, read_connection, write_connection
from edidub_engine.daemon.paths import MediaRoots, partial_files, remove_partial
from edidub_engine.daemon.protocol import (
    ACTIONS,
    DEFAULT_EVENTS_PORT,
    DEFAULT_REQUEST_PORT,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    AdaptReply,
    BusyError,
    CancelReply,
    ErrorInfo,
    EventKind,
    ForbiddenError,
    HelloReply,
    InternalError,
    JobEvent,
    JobNotFoundError,
    JobState,
    JobView,
    MAX_SHOTS_PER_SUBMIT,
    ListJobsReply,
    Message,
    ModelInfo,
    ModelsReply,
    MsgType,
    ProtocolError,
    ResultReply,
    ShutdownReply,
    StatusReply,
    SubmitReply,
    SubmitTimelineReply,
    UnknownMessageError,
    UnsupportedVersionError,
    epoch_to_iso,
    error_content,
    error_from_wire,
    from_wire,
    ok_content,
    to_wire,
    version_supported,
)
from edidub_engine.daemon.store import JobRecord, JobStore
from edidub_engine.daemon.worker import LiveProgress, RunnerFactory, Worker, WorkerShared, import_named, load_runner_factory
from edidub_engine.errors import CancelledError, EdidubError, InvalidArgumentError, ModelMissingError, OutputExistsError
from edidub_engine.shot import CODECS, MIN_ADAPT_TAKE_FRAMES, DubOptions, RenderedClip

__all__ = ["Server", "ServerSettings", "is_local_endpoint"]

log = logging.getLogger("edidub.daemon")
_BATCH = 64  # messages handled per poll wake-up before events are forwarded again
_CAPABILITIES = ["hello", "submit", "submit_timeline", "adapt", "status", "result", "list_jobs", "cancel", "models", "shutdown", "events",
                 "priority", "lines"]
_BUNDLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ServerSettings:
    """How a daemon runs.  Endpoints may end in ``:*`` (an ephemeral port; read it back from the server)."""

    store_path: Path
    media_roots: tuple[Path, ...]
    output_root: Path | None = None
    request_endpoint: str = f"tcp://127.0.0.1:{DEFAULT_REQUEST_PORT}"
    events_endpoint: str = f"tcp://127.0.0.1:{DEFAULT_EVENTS_PORT}"
    keys_dir: Path | None = None  # server.key_secret (from `edidub keys new`); authorized_clients/*.key = allow-list
    connection_file: Path | None = None  # local authentication (connection.py); None: none (library use, or serve --no-auth)
    runner: str = "edidub_engine.render:dub_shot"
    runner_factory: str | None = None  # "module:factory", factory(device) -> runner; wins over ``runner``
    catalogue: str | None = None  # "module:function" -> the model maps the runner will serve, read at start (catalogue.py)
    devices: tuple[str, ...] = ("cpu",)
    adapted_dir: Path | None = None  # where `adapt` jobs publish their bundles (served from there); None: no adapt jobs
    max_queued: int = 10_000
    max_message_bytes: int = MAX_MESSAGE_BYTES
    shutdown_timeout_s: float = 30.0


class _ClientKeys:
    """The ZAP check: the connection file's client key, and the keys in ``--keys DIR/authorized_clients``.

    Nothing else gets in: the server's public key (``server.key``) is handed to every client, so it
    is no client credential.  The folder is read at each handshake, so a key added to it works
    without a restart.
    """

    def __init__(self, connection: ConnectionInfo | None, allow_list: Path | None):
        self.connection_key = connection.client_public_key.encode() if connection is not None else None
        self.allow_list = allow_list

    def callback(self, domain: str, key: bytes) -> bool:
        if self.connection_key is not None and key == self.connection_key:
            return True
        if self.allow_list is not None and self.allow_list.is_dir():
            from zmq.auth.certs import load_certificates

            return key in load_certificates(str(self.allow_list))
        return False


class Server:
    """A daemon: ``with Server(settings) as server: ...`` runs it in background threads (tests);
    ``Server(settings).serve_forever()`` runs the loop in the calling thread (``edidub serve``).

    ``runner_factory`` (device → runner) and ``catalogue`` (→ model maps) override the dotted names in ``settings``.
    """

    def __init__(self, settings: ServerSettings, *, runner_factory: RunnerFactory | None = None,
                 catalogue: Callable[[], list[dict[str, Any]]] | None = None):
        self.settings = settings
        self._factory = runner_factory or load_runner_factory(runner=settings.runner, runner_factory=settings.runner_factory)
        self._catalogue_source = catalogue or (import_named(settings.catalogue) if settings.catalogue else None)
        self._catalogue: list[ModelInfo] = []  # what the runner serves, known at start (before any worker has loaded)
        self.session = uuid.uuid4().hex
        self.request_endpoint = ""
        self.events_endpoint = ""
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._started = False
        self._thread: threading.Thread | None = None
        self._workers: list[Worker] = []
        self._auth = None
        self.connection: ConnectionInfo | None = None  # what the connection file holds once started
        self._context: zmq.Context | None = None
        self.store: JobStore | None = None
        self.dropped = 0  # frames with impossible framing, dropped unanswered (for tests and logs)

    # -- life cycle -------------------------------------------------------------------------------
    def start(self, *, background: bool = True) -> Server:
        """Check the settings, open the store, recover, bind, start the workers (and the loop thread)."""
        s = self.settings
        remote = [e for e in (s.request_endpoint, s.events_endpoint) if not is_local_endpoint(e)]
        keys = self._load_keys() if s.keys_dir is not None else None
        if keys is not None:
            self._check_allow_list()
        if remote and keys is None:
            raise InvalidArgumentError(
                f"refusing to listen on {', '.join(remote)} without CURVE keys: anyone on the network could send jobs",
                hint="create a key pair with `edidub keys new DIR` and start with --keys DIR, or bind 127.0.0.1",
            )
        self.roots = MediaRoots(s.media_roots, output_root=s.output_root)
        if self._catalogue_source is not None:  # a missing default bundle stops the start here, with its reason
            self._catalogue = [from_wire(ModelInfo, m, "catalogue") for m in self._catalogue_source()]
        self.store = JobStore(s.store_path)
        try:
            self._recover()
            connection = self._connection_keys(keys)
            if connection is not None and keys is None:
                keys = (connection.server_public_key.encode(), connection.server_secret_key.encode())
            self._open_sockets(keys, connection)
            if connection is not None:
                self.connection = replace(connection, requests=self.request_endpoint, events=self.events_endpoint, pid=os.getpid())
                write_connection(s.connection_file, self.connection)
        except BaseException:
            self._close_everything()
            raise
        self._shared = WorkerShared(store=self.store, queue_cv=threading.Condition(), stopping=threading.Event(), session=self.session)
        for device in s.devices:
            worker = Worker(device=device, factory=self._factory, shared=self._shared, context=self._context, events_endpoint=self._inproc)
            worker.start()
            self._workers.append(worker)
        self._started = True
        log.info("edidub daemon %s: requests on %s, events on %s, store %s", __version__, self.request_endpoint, self.events_endpoint, s.store_path)
        if background:
            self._thread = threading.Thread(target=self._loop, name="edidub-daemon-loop", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Start (unless started) and run the loop here until shutdown or :meth:`stop`."""
        if not self._started:
            self.start(background=False)
        self._loop()

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to stop and wait for it (a running job is re-queued)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s if timeout_s is not None else self.settings.shutdown_timeout_s + 5)

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stopped.wait(timeout_s)

    def __enter__(self) -> Server:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- set-up -----------------------------------------------------------------------------------
    def _load_keys(self) -> tuple[bytes, bytes]:
        from zmq import auth as zmq_auth

        secret_file = Path(self.settings.keys_dir) / "server.key_secret"
        if not secret_file.is_file():
            raise InvalidArgumentError(
                f"no server key pair in {self.settings.keys_dir} (expected server.key_secret)",
                hint="create one with `edidub keys new DIR`",
            )
        public, secret = zmq_auth.load_certificate(secret_file)
        if not secret:
            raise InvalidArgumentError(f"{secret_file} holds no secret key")
        return public, secret

    def _check_allow_list(self) -> None:
        """With ``--keys``, say who gets in: the allow-list's keys and the connection file's; never any holder of server.key."""
        folder = Path(self.settings.keys_dir) / "authorized_clients"
        if folder.is_dir():
            return
        if self.settings.connection_file is None:
            raise InvalidArgumentError(
                f"--keys {self.settings.keys_dir} has no authorized_clients folder and there is no connection file (--no-auth): "
                "no client could be admitted (server.key is handed to every client, so it admits nobody on its own)",
                hint=f"put the public key of each client to admit into {folder}/ (`edidub keys new DIR --name alice` makes "
                     "alice.key), or drop --no-auth so that this user's own processes get in through the connection file",
            )
        log.warning("%s does not exist: only the client key of the connection file %s is admitted; put the public keys of other "
                    "clients there (`edidub keys new DIR --name alice`) to admit them", folder, self.settings.connection_file)

    def _connection_keys(self, keys: tuple[bytes, bytes] | None) -> ConnectionInfo | None:
        """The connection file's key pairs: kept from the last start when the file is still private, else new."""
        path = self.settings.connection_file
        if path is None:
            return None
        info = read_connection(path) if private_to_owner(path) else None
        if info is None and Path(path).exists():
            log.warning("%s was unreadable or readable by others: new keys; clients pick them up on their next connection", path)
        if info is None:
            info = ConnectionInfo.new_keys()
        if keys is not None:  # the daemon's own pair is the --keys folder's
            return replace(info, server_public_key=keys[0].decode(), server_secret_key="")
        if not info.server_secret_key:
            fresh = ConnectionInfo.new_keys()
            info = replace(info, server_public_key=fresh.server_public_key, server_secret_key=fresh.server_secret_key)
        return info

    def _open_sockets(self, keys: tuple[bytes, bytes] | None, connection: ConnectionInfo | None = None) -> None:
        s = self.settings
        self._context = zmq.Context()
        allow_list = Path(s.keys_dir) / "authorized_clients" if s.keys_dir is not None else None
        if keys is not None:
            from zmq.auth.thread import ThreadAuthenticator

            self._auth = ThreadAuthenticator(self._context)
            self._auth.start()
            self._auth.configure_curve_callback(domain="*", credentials_provider=_ClientKeys(connection, allow_list))
        self._router = self._context.socket(zmq.ROUTER)
        self._pub = self._context.socket(zmq.PUB)
        self._pull = self._context.socket(zmq.PULL)
        for sock in (self._router, self._pub):
            sock.linger = 1000
            sock.setsockopt(zmq.MAXMSGSIZE, s.max_message_bytes)
            if keys is not None:
                sock.curve_publickey, sock.curve_secretkey = keys
                sock.curve_server = True
        self._router.router_handover = True  # a client that reconnects with the same identity takes over
        self._pull.linger = 0
        self._inproc = f"inproc://edidub-events-{self.session}"
        self._pull.bind(self._inproc)
        self._router.bind(s.request_endpoint)
        self._pub.bind(s.events_endpoint)
        self.request_endpoint = self._router.last_endpoint.decode()
        self.events_endpoint = self._pub.last_endpoint.decode()

    def _recover(self) -> None:
        requeued, cancelled = self.store.recover()
        for job in requeued:
            if job.output_path:
                for partial in partial_files(Path(job.output_path)):
                    log.info("removing %s, left by an interrupted attempt of job %s", partial, job.job_id)
                    remove_partial(partial)
            log.info("job %s (shot %s) was running when the daemon stopped; re-queued", job.job_id, job.shot_id)
        for job in cancelled:
            log.info("job %s was being cancelled when the daemon stopped; marked cancelled", job.job_id)

    def _close_everything(self) -> None:
        for name in ("_router", "_pub", "_pull"):
            sock = getattr(self, name, None)
            if sock is not None:
                sock.close()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._context is not None:
            self._context.term()
            self._context = None
        if self.store is not None:
            self.store.close()

    # -- the loop ---------------------------------------------------------------------------------
    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._pull, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                ready = dict(poller.poll(200))
                if self._pull in ready:
                    self._forward_events()
                if self._router in ready:
                    for _ in range(_BATCH):
                        try:
                            frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._handle(frames)
        except Exception:
            log.error("the daemon's loop failed:\n%s", traceback.format_exc())
        finally:
            self._shutdown()

    def _forward_events(self) -> None:
        while True:
            try:
                frames = self._pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._pub.send_multipart(frames)

    def _publish(self, job_id: str, kind: EventKind, state: JobState, *, error: dict | None = None) -> None:
        event = JobEvent(job_id=job_id, event=kind, state=state, error=ErrorInfo(**error) if error else None)
        self._pub.send_multipart([f"job.{job_id}".encode(), Message.make(MsgType.JOB_EVENT, to_wire(event), session=self.session).pack()])

    def _shutdown(self) -> None:
        log.info("stopping: workers finish their current step, a running job is re-queued")
        self._shared.stopping.set()
        with self._shared.queue_cv:
            self._shared.queue_cv.notify_all()
        deadline = time.monotonic() + self.settings.shutdown_timeout_s
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [w.device for w in self._workers if w.is_alive()]
        self._forward_events()
        if stuck:  # a runner that ignores should_cancel: leave it; its job is re-queued on the next start
            log.warning("worker(s) %s did not stop within %.0f s", ", ".join(stuck), self.settings.shutdown_timeout_s)
            for name in ("_router", "_pub", "_pull"):
                getattr(self, name).close(linger=0)
            if self._auth is not None:
                self._auth.stop()
            self.store.close()
        else:
            self._close_everything()
        self._stopped.set()

    # -- one message ------------------------------------------------------------------------------
    def _handle(self, frames: list[zmq.Frame]) -> None:
        # DEALER sends [payload] (ROUTER sees [identity, payload]); REQ adds an empty delimiter.
        if len(frames) not in (2, 3) or (len(frames) == 3 and len(frames[1].bytes) != 0):
            self.dropped += 1
            return
        try:
            peer = frames[-1].get("Peer-Address")
        except zmq.ZMQError:
            peer = ""
        reply = self._dispatch(frames[-1].bytes, peer or "")
        try:
            self._router.send_multipart([f.bytes for f in frames[:-1]] + [reply.pack()], zmq.NOBLOCK)
        except zmq.ZMQError:  # the peer is gone or not reading: its loss
            self.dropped += 1
        if reply.msg_type == MsgType.SHUTDOWN_REPLY.value and reply.content.get("status") == "ok":
            self._stop.set()

    def _dispatch(self, data: bytes, peer: str) -> Message:
        try:
            message = Message.unpack(data)
        except ProtocolError as err:
            return Message.make(MsgType.ERROR_REPLY, error_content(err), session=self.session, parent=err.header or None)
        msg_type = message.msg_type
        action = ACTIONS.get(msg_type.removesuffix("_request")) if msg_type.endswith("_request") else None
        reply_type = f"{action.name}_reply" if action else MsgType.ERROR_REPLY.value
        try:
            if not version_supported(message.header.protocol):
                raise UnsupportedVersionError(
                    f"protocol {message.header.protocol!r} is not supported by this daemon (it speaks {PROTOCOL_VERSION})",
                    hint="update the client or the daemon so that both speak the same major version",
                    details={"supported": [PROTOCOL_VERSION]},
                )
            if action is None:
                raise UnknownMessageError(
                    f"unknown message type {msg_type[:64]!r}",
                    details={"known": [f"{name}_request" for name in ACTIONS]},
                )
            request = from_wire(action.request, message.content, "content", ignore_unknown=False)
            reply = getattr(self, f"_on_{action.name}")(request, message, peer)
            content = ok_content(reply)
        except EdidubError as err:
            content = error_content(err)
        except Exception as exc:
            log.error("handling %s failed:\n%s", msg_type[:64], traceback.format_exc())
            content = error_content(InternalError(f"the daemon failed on {msg_type[:64]}: {type(exc).__name__}", hint="see the daemon's log"))
        return Message.make(reply_type, content, session=self.session, parent=message.header)

    # -- handlers ---------------------------------------------------------------------------------
    def _models(self) -> list[ModelInfo]:
        """The catalogue read at start, completed by what the workers report once loaded (weights' hashes, bundles adapted since)."""
        out: dict[str, ModelInfo] = {}
        for worker in self._workers:
            for model in worker.models:
                try:
                    info = from_wire(ModelInfo, model, "model")
                except InvalidArgumentError:
                    continue
                out.setdefault(info.name, info)
        for info in self._catalogue:
            out.setdefault(info.name, info)
        return list(out.values())

    def _check_model(self, shot) -> None:
        """A shot naming a bundle this daemon does not serve is refused at submit, not in the worker (with the engine's
        runner the catalogue knows them from the start; a custom runner's list only once a worker has loaded)."""
        name = shot.options.model
        served = [m.name for m in self._models()]
        if name is not None and served and name not in served:
            raise ModelMissingError(f"shot {shot.shot_id!r}: model bundle {name!r} is not served by this daemon",
                                    hint=f"choose one of {', '.join(served)} (the `models` request lists them), or leave options.model out")

    def _on_hello(self, request, message: Message, peer: str) -> HelloReply:
        log.info("hello from %r (session %s, peer %s)", request.client[:80], message.header.session[:16], peer or "local")
        return HelloReply(
            protocol=PROTOCOL_VERSION,
            engine_version=__version__,
            capabilities=list(_CAPABILITIES),
            devices=list(self.settings.devices),
            models=self._models(),
            events_endpoint=self.events_endpoint,
            media_roots=[str(r) for r in self.roots.roots],
            output_root=str(self.roots.output_root) if self.roots.output_root else None,
            max_message_bytes=self.settings.max_message_bytes,
            workers=[w.health() for w in self._workers],
        )

    def _on_submit(self, request, message: Message, peer: str) -> SubmitReply:
        prepared = []
        for index, shot in enumerate(request.shots):
            try:
                _json_safe(shot.record, f"shot {shot.shot_id!r} record")
                self._check_model(shot)
                ready = self.roots.prepare(shot)
                check_against_media(ready.request)
                prepared.append(ready)
            except EdidubError as err:
                err.details.setdefault("index", index)
                err.details.setdefault("shot_id", shot.shot_id)
                raise
        return SubmitReply(job_ids=self._queue(prepared, request.priority, message))

    def _on_submit_timeline(self, request, message: Message, peer: str) -> SubmitTimelineReply:
        """Plan the timeline with otio_adapters (the one clip-range → shot conversion), check every shot, queue all or none."""
        from dataclasses import replace

        from otio_adapters.batch import plan_batch, read_timeline_string
        from otio_adapters.shots import SkippedClip

        timeline = read_timeline_string(request.timeline, where="content.timeline")
        if request.codec not in CODECS:
            raise InvalidArgumentError(f"content.codec {request.codec[:32]!r} is not supported", hint=f"use one of {', '.join(CODECS)}")
        options = DubOptions.from_dict(request.options or {}, "content.options")
        try:
            plan = plan_batch(
                timeline, dub_track=request.dub_track, picture_tracks=request.picture_tracks, language=request.language,
                output_dir=request.output_dir, codec=request.codec, options=options, handles=request.handles,
                check_media_exists=False,  # paths are checked against the media roots below, never probed outside them
            )
        except EdidubError:
            raise
        except Exception as exc:  # an OTIO structure the conversion does not expect: a clear refusal, not INTERNAL
            log.warning("submit_timeline: converting the timeline failed:\n%s", traceback.format_exc())
            raise InvalidArgumentError(f"content.timeline cannot be converted to shots ({type(exc).__name__}: {str(exc)[:200]})") from None
        if len(plan.shots) > MAX_SHOTS_PER_SUBMIT:
            raise InvalidArgumentError(f"the timeline has {len(plan.shots)} shots; at most {MAX_SHOTS_PER_SUBMIT} per submit_timeline",
                                       hint="submit it in parts (picture_tracks), or use edidub batch")
        prepared, skipped = [], list(plan.skipped)
        for index, shot in enumerate(plan.shots):
            try:
                _json_safe(shot.record, f"shot {shot.shot_id!r} record")
                self._check_model(shot)
                ready = self.roots.prepare(shot)
                check_against_media(ready.request)
                prepared.append(ready)
            except EdidubError as err:
                role = err.details.get("role")
                if role not in ("source", "dub_audio") or err.code == "FORBIDDEN":
                    # media outside the roots (the daemon's set-up is wrong), OUTPUT_EXISTS, a bad output folder: refused whole
                    err.details.setdefault("index", index)
                    err.details.setdefault("shot_id", shot.shot_id)
                    raise
                # This clip's own media is offline, unresolvable here (a Windows path), not decodable or too short:
                # listed like any other skipped clip, and the rest of the timeline is dubbed.
                rec = shot.record
                if role == "dub_audio":
                    reason = "dub_unusable"
                elif "media_frames" in err.details:
                    reason = "outside_media"
                else:
                    reason = "unsupported_media" if err.code == "BAD_MEDIA" else "missing_media"
                skipped.append(SkippedClip(clip=rec.get("clip", ""), track=rec.get("track", ""), track_index=rec.get("track_index", 0),
                                           record_start_frame=rec.get("start_frame"), record_end_frame=rec.get("end_frame"),
                                           reason=reason, message=err.message, clip_path=tuple(rec.get("clip_path") or ())))
        if not prepared:
            raise InvalidArgumentError(
                f"timeline {timeline.name!r} has no clip to dub on track {request.dub_track!r} ({len(skipped)} clip(s) skipped)",
                hint="check the dub and picture track names; the details list the skipped clips",
                details={"skipped": [replace(s, message=s.message[:300]).to_dict() for s in skipped[:50]]},
            )
        batch_id = f"batch-{uuid.uuid4().hex}"
        record = {
            "timeline": request.timeline, "language": plan.language, "settings": plan.settings(),
            "shot_ids": [p.request.shot_id for p in prepared], "dub_track": request.dub_track,
        }
        job_ids = self._queue(prepared, request.priority, message, batch=(batch_id, record))
        return SubmitTimelineReply(batch_id=batch_id, job_ids=job_ids, shot_ids=record["shot_ids"],
                                   skipped=[s.to_dict() for s in skipped], warnings=list(plan.shot_list.warnings))

    def _on_adapt(self, request, message: Message, peer: str) -> AdaptReply:
        """Check the takes and the names now; the fine-tuning runs as a job (progress, cancel, restart like a dub)."""
        folder = self.settings.adapted_dir
        if folder is None:
            raise InvalidArgumentError("this daemon keeps no adapted bundles", hint="start it with --adapted-dir DIR")
        if not _BUNDLE_NAME.fullmatch(request.name):
            raise InvalidArgumentError(f"content.name {request.name[:64]!r} is not a bundle name",
                                       hint="letters, digits, '-', '_' and '.', starting with a letter or digit")
        if request.steps is None and request.minutes is None:
            raise InvalidArgumentError("content: give steps, minutes or both (the adaptation's budget)")
        served = [m.name for m in self._models()]
        if request.name in served:
            raise OutputExistsError(f"a bundle named {request.name!r} is already served", hint="choose another name")
        if request.base is not None and served and request.base not in served:
            raise ModelMissingError(f"base bundle {request.base!r} is not served by this daemon", hint=f"choose one of {', '.join(served)}")
        clips = []
        for index, clip in enumerate(request.clips):
            path = self.roots.readable(clip.path, f"clips[{index}]")
            if clip.end_frame is not None and clip.end_frame <= clip.start_frame:
                raise InvalidArgumentError(f"clips[{index}]: end_frame {clip.end_frame} is not after start_frame {clip.start_frame}")
            if clip.end_frame is not None and clip.end_frame - clip.start_frame < MIN_ADAPT_TAKE_FRAMES:
                raise InvalidArgumentError(f"clips[{index}]: {clip.end_frame - clip.start_frame} frames of {Path(clip.path).name} are "
                                           f"fewer than the {MIN_ADAPT_TAKE_FRAMES} an adaptation needs",
                                           hint="give takes of at least 3 s where the actor speaks", details={"index": index})
            clips.append({"path": str(path), "start_frame": clip.start_frame, "end_frame": clip.end_frame})
        out = folder / request.name
        if out.exists() or self.store.active_outputs([str(out)]):
            raise OutputExistsError(f"{out} exists or is being made by another adapt job", hint="choose another name",
                                    details={"paths": [str(out)]})
        job = {"adapt": {"name": request.name, "clips": clips, "base": request.base, "steps": request.steps, "minutes": request.minutes,
                         "validate_every": request.validate_every, "out": str(out)}}
        ids = self._enqueue([(f"adapt:{request.name}", job, str(out))], request.priority, message)
        return AdaptReply(job_id=ids[0], bundle_path=str(out))

    def _queue(self, prepared, priority, message: Message, *, batch: tuple[str, dict] | None = None) -> list[str]:
        """Refuse output clashes and a full queue, then queue the prepared shots in one transaction."""
        outputs = [str(p.output_path) for p in prepared]
        clash = {o for o in outputs if outputs.count(o) > 1} | self.store.active_outputs(outputs)
        if clash:
            first = sorted(clash)[0]
            index = outputs.index(first)  # the first shot of this request that writes it: what the caller must change
            shot_id = prepared[index].request.shot_id
            raise OutputExistsError(
                f"shot {shot_id!r}: another queued or running job, or another shot of this request, writes {first}",
                hint="give each shot its own output.name",
                details={"paths": sorted(clash)[:20], "index": index, "shot_id": shot_id},
            )
        active = self.store.count_active()
        if active + len(prepared) > self.settings.max_queued:
            raise BusyError(
                f"the queue holds {active} jobs; {len(prepared)} more would pass its limit of {self.settings.max_queued}",
                hint="wait for jobs to finish, then submit again",
                details={"queued": active, "limit": self.settings.max_queued},
            )
        return self._enqueue([(p.request.shot_id, p.request.to_dict(), str(p.output_path)) for p in prepared], priority, message, batch=batch)

    def _enqueue(self, entries, priority, message: Message, *, batch: tuple[str, dict] | None = None) -> list[str]:
        """Store ``(shot_id, request, output_path)`` jobs in one transaction, wake the workers, announce them."""
        ids = self.store.add(entries, priority, session=message.header.session, batch=batch)
        with self._shared.queue_cv:
            self._shared.queue_cv.notify_all()
        for job_id in ids:
            self._publish(job_id, EventKind.QUEUED, JobState.QUEUED)
        return ids

    def _job(self, job_id: str) -> JobRecord:
        job = self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(f"no job {job_id[:64]!r} in this daemon's store", details={"job_id": job_id[:128]})
        return job

    def _view(self, job: JobRecord) -> JobView:
        live = self._shared.live.get(job.job_id) if job.state is JobState.RUNNING else None
        live = live or LiveProgress(job.stage, job.frames_done, job.frames_total)
        return JobView(
            job_id=job.job_id,
            shot_id=job.shot_id,
            state=job.state,
            priority=job.priority,
            submitted_at=epoch_to_iso(job.submitted_at),
            frames_done=live.frames_done,
            frames_total=live.frames_total,
            stage=live.stage,
            eta_s=live.eta_s,
            attempts=job.attempts,
            cancel_requested=job.cancel_requested,
            started_at=epoch_to_iso(job.started_at),
            finished_at=epoch_to_iso(job.finished_at),
            output_path=(job.result or {}).get("path", job.output_path),
            error=ErrorInfo(**job.error) if job.error else None,
        )

    def _on_status(self, request, message: Message, peer: str) -> StatusReply:
        return StatusReply(job=self._view(self._job(request.job_id)))

    def _on_result(self, request, message: Message, peer: str) -> ResultReply:
        if (request.job_id is None) == (request.batch_id is None):
            raise InvalidArgumentError("content: give exactly one of job_id and batch_id")
        if request.batch_id is not None:
            return self._batch_result(request.batch_id)
        job = self._job(request.job_id)
        if job.state is JobState.DONE and "bundle" in (job.result or {}):
            return ResultReply(job_id=job.job_id, bundle=job.result["bundle"])
        if job.state is JobState.DONE:
            return ResultReply(job_id=job.job_id, clip=RenderedClip.from_dict(job.result))
        if job.state is JobState.FAILED:
            raise error_from_wire(job.error or {})
        if job.state is JobState.CANCELLED:
            raise CancelledError(f"job {job.job_id} (shot {job.shot_id!r}) was cancelled", details={"job_id": job.job_id})
        raise BusyError(
            f"job {job.job_id} (shot {job.shot_id!r}) is {job.state.value}; its result is not ready",
            hint="wait for its done event or poll status",
            details={"job_id": job.job_id, "state": job.state.value},
        )

    def _batch_result(self, batch_id: str) -> ResultReply:
        """Once every job of the batch has ended: the timeline with the finished shots on the dub track, and the failures."""
        import opentimelineio as otio

        from otio_adapters.batch import dubbed_timeline, read_timeline_string

        batch = self.store.get_batch(batch_id)
        if batch is None:
            raise JobNotFoundError(f"no batch {batch_id[:64]!r} in this daemon's store", details={"batch_id": batch_id[:128]})
        jobs = [self.store.get(j) for j in batch.job_ids]
        states: dict[str, int] = {}
        for job in jobs:
            states[job.state.value] = states.get(job.state.value, 0) + 1
        if any(not job.state.terminal for job in jobs):
            raise BusyError(
                f"batch {batch_id} is not finished ({', '.join(f'{n} {s}' for s, n in sorted(states.items()))})",
                hint="wait for its jobs' done events, or poll status of each job",
                details={"batch_id": batch_id, "states": states, "job_ids": batch.job_ids},
            )
        rec = batch.record
        clips = [RenderedClip.from_dict(job.result) for job in jobs if job.state is JobState.DONE]
        failed = [{"shot_id": job.shot_id, "job_id": job.job_id, "state": job.state.value, "error": job.error or {}}
                  for job in jobs if job.state is not JobState.DONE]
        timeline = read_timeline_string(rec["timeline"], where=f"batch {batch_id}")
        if clips:
            timeline = dubbed_timeline(timeline, clips, language=rec["language"], batch_id=batch_id, settings=rec["settings"],
                                       order=rec["shot_ids"])
        text = otio.adapters.write_to_string(timeline, adapter_name="otio_json")
        return ResultReply(batch_id=batch_id, timeline=text, dubbed=[c.shot_id for c in clips], failed=failed)

    def _on_list_jobs(self, request, message: Message, peer: str) -> ListJobsReply:
        return ListJobsReply(jobs=[self._view(j) for j in self.store.list(request.states, request.limit)])

    def _on_cancel(self, request, message: Message, peer: str) -> CancelReply:
        before = self._job(request.job_id)
        job = self.store.cancel(request.job_id)
        if before.state is JobState.QUEUED and job.state is JobState.CANCELLED:
            self._publish(job.job_id, EventKind.CANCELLED, JobState.CANCELLED)
        elif job.state is JobState.RUNNING:
            self._shared.cancels.setdefault(job.job_id, threading.Event()).set()
        return CancelReply(job_id=job.job_id, state=job.state, cancel_requested=job.cancel_requested)

    def _on_models(self, request, message: Message, peer: str) -> ModelsReply:
        return ModelsReply(models=self._models())

    def _on_shutdown(self, request, message: Message, peer: str) -> ShutdownReply:
        if peer and not _is_loopback(peer):
            raise ForbiddenError(f"shutdown is accepted from this machine only, not from {peer}")
        log.info("shutdown requested (session %s)", message.header.session[:16])
        return ShutdownReply()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _json_safe(value: Any, where: str) -> None:
    """The store keeps requests as JSON: refuse what JSON cannot hold (bytes, msgpack ext types, NaN)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"{where} must hold only strings, numbers, booleans, null, lists and maps ({exc})") from None
