"""The Premiere bridge: a WebSocket on 127.0.0.1 between the panel and the EdiDub daemon.

A Premiere panel (UXP or CEP) can open a WebSocket but cannot speak ZeroMQ, so this small
asyncio process sits between them:

* **Auth.**  The first message must be ``{"op": "hello", "token": …}`` with the token from the
  per-user token file (:mod:`.token`); anything else is answered ``AUTH_FAILED`` and the
  socket is closed (code 4401).  Panels cannot set headers, hence a message.
* **Dub.**  ``{"op": "dub", …}`` (ticks, timebase, paths — see :mod:`.convert`) becomes OTIO
  ranges and ShotRequests, submitted as *interactive* jobs through :mod:`edidub_engine.client`.
  The reply ``accepted`` lists one job per shot with where its result goes in the sequence.
* **Adapt.**  ``{"op": "adapt", "name", "clips": […]}`` (the selected takes, as for a dub) becomes an
  ``adapt`` job through ``Client.adapt`` (:func:`.convert.plan_adapt`: each clip's source frames
  ``[in, out)`` of its media), answered ``adapt_accepted``; its ``progress`` counts training steps and
  its ``done`` carries the new model bundle (``bundle``: name, validation before/after, steps), which
  the panel then names in its dubs' ``options.model``.  Progress and results of both kinds carry
  ``kind`` (``"dub"`` or ``"adapt"``).
* **Progress and results** (``progress`` / ``done`` / ``failed`` / ``cancelled``) are pushed to
  the panel.  They belong to the panel's *session* (an id the panel keeps), not to a socket:
  a panel that disconnects mid-job gets the latest state and every undelivered result when it
  says ``hello`` again with the same session, until it answers ``{"op": "ack", "job_id"}``.
  A panel may also hand back jobs it remembers (``hello.jobs``), so results survive a bridge
  restart too (the daemon keeps jobs in its store).
* **Daemon down.**  ``welcome`` says whether the daemon answers; a ``dub`` while it is down is
  answered ``{"op": "error", "code": "DAEMON_DOWN", "message", "hint"}``; jobs being watched
  when it goes away get a ``daemon`` notice and are picked up again when it is back.

Blocking client calls run in threads (one :class:`~edidub_engine.client.Client` per thread);
one watcher thread polls the status of every job in flight.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from edidub_engine import __version__
from edidub_engine.client import Client, DaemonDownError
from edidub_engine.daemon.protocol import JobState, Priority
from edidub_engine.errors import EdidubError, InvalidArgumentError
from edidub_engine.shot import OutputSpec

from .convert import MediaInfo, plan_adapt, plan_dub, probe_media

__all__ = ["DEFAULT_PORT", "Bridge", "BridgeSettings"]

log = logging.getLogger("edidub.bridge.premiere")
DEFAULT_PORT = 47620
AUTH_CLOSE_CODE = 4401
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_TERMINAL_OP = {JobState.DONE: "done", JobState.FAILED: "failed", JobState.CANCELLED: "cancelled"}


@dataclass(frozen=True)
class BridgeSettings:
    token: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT  # 0: a free port (read Bridge.url)
    daemon_endpoint: str | None = None  # default: $EDIDUB_DAEMON or tcp://127.0.0.1:47610
    server_key: str | None = None  # the daemon's public key when it uses CURVE
    output_dir: str | None = None  # default: the daemon's --output-root, else beside each source
    codec: str = "prores_hq"
    adapt_minutes: float | None = 20.0  # an adapt request's budget when the panel gives none (steps and/or minutes)
    adapt_steps: int | None = None
    adapt_validate_every: int = 100
    request_timeout_s: float = 10.0
    hello_timeout_s: float = 3.0
    auth_timeout_s: float = 10.0
    poll_s: float = 0.25


def _error(code: str, message: str, hint: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"op": "error", "code": code, "message": message, "hint": hint, **extra}


def _from_exc(err: EdidubError, **extra: Any) -> dict[str, Any]:
    return _error(err.code, err.message, err.hint or err.details.get("hint"), **extra)


@dataclass
class _Job:
    job_id: str
    shot_id: str
    item: str
    name: str
    place: dict[str, Any]
    frames: list[int] = field(default_factory=list)
    kind: str = "dub"  # or "adapt": its result is a model bundle, not a clip to place
    last: dict[str, Any] | None = None  # latest progress message
    final: dict[str, Any] | None = None  # done / failed / cancelled message, kept until acked


@dataclass
class _Session:
    id: str
    ws: ServerConnection | None = None
    jobs: dict[str, _Job] = field(default_factory=dict)  # job_id → job, until acked
    daemon_notice: dict[str, Any] | None = None


class Bridge:
    """``async with Bridge(settings) as bridge: …`` (``bridge.url``), or ``await bridge.serve_forever()``."""

    def __init__(self, settings: BridgeSettings, *, media_info: Callable[[str], MediaInfo] = probe_media):
        if not settings.token:
            raise InvalidArgumentError("the bridge needs a token")
        self.settings = settings
        self._media_info = media_info
        self._sessions: dict[str, _Session] = {}
        self._server = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="edidub-bridge-req")
        self._local = threading.local()
        self._watch: dict[str, tuple[str, str]] = {}  # job_id → (session id, kind)
        self._watch_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._daemon_info: dict[str, Any] | None = None
        self.url = ""

    # -- life cycle -------------------------------------------------------------------------------
    async def start(self) -> Bridge:
        self._loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handle, self.settings.host, self.settings.port, max_size=MAX_MESSAGE_BYTES, ping_interval=20, ping_timeout=20,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://{self.settings.host}:{port}"
        self._watcher = threading.Thread(target=self._watch_loop, name="edidub-bridge-watch", daemon=True)
        self._watcher.start()
        log.info("Premiere bridge on %s (daemon %s)", self.url, self.settings.daemon_endpoint or "default")
        return self

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join, 10)
        await asyncio.to_thread(self._requests.submit(self._close_client).result)
        self._requests.shutdown(wait=True)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        try:
            await self._server.serve_forever()
        finally:
            await self.stop()

    async def __aenter__(self) -> Bridge:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- the daemon, from threads -----------------------------------------------------------------
    def _make_client(self) -> Client:
        return Client(self.settings.daemon_endpoint, timeout_s=self.settings.request_timeout_s,
                      server_key=self.settings.server_key, name=f"edidub-premiere-bridge/{__version__}")

    def _client(self) -> Client:
        """The request thread's own client."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make_client()
        return client

    def _close_client(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
            self._local.client = None

    async def _call(self, fn: Callable[[Client], Any]) -> Any:
        return await asyncio.wrap_future(self._requests.submit(lambda: fn(self._client())))

    async def _daemon_status(self) -> dict[str, Any]:
        def hello(client: Client) -> dict[str, Any]:
            old = client.timeout_s
            client.timeout_s = self.settings.hello_timeout_s
            try:
                reply = client.hello()
            finally:
                client.timeout_s = old
            return {"ok": True, "endpoint": client.endpoint, "engine_version": reply.engine_version, "devices": list(reply.devices),
                    "models": [m.name for m in reply.models if m.present], "output_root": reply.output_root}

        try:
            info = await self._call(hello)
        except EdidubError as err:
            self._daemon_info = None
            return {"ok": False, "code": err.code, "message": err.message, "hint": err.hint}
        self._daemon_info = info
        return info

    # -- one panel connection ---------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        session = await self._authenticate(ws)
        if session is None:
            return
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                    if not isinstance(message, dict):
                        raise ValueError
                except ValueError:
                    await self._send_ws(ws, _error("INVALID_ARG", "messages must be JSON objects"))
                    continue
                try:
                    await self._dispatch(session, ws, message)
                except EdidubError as err:
                    await self._send_ws(ws, _from_exc(err, request_id=message.get("request_id")))
                except Exception as exc:  # never let one message end the connection
                    log.exception("handling %r failed", message.get("op"))
                    await self._send_ws(ws, _error("INTERNAL", f"the bridge failed on {str(message.get('op'))[:40]}: {type(exc).__name__}: {exc}",
                                                   request_id=message.get("request_id")))
        except ConnectionClosed:
            pass
        finally:
            if session.ws is ws:
                session.ws = None
                log.info("panel session %s disconnected (%d job(s) kept)", session.id[:8], len(session.jobs))

    async def _authenticate(self, ws: ServerConnection) -> _Session | None:
        try:
            raw = await asyncio.wait_for(ws.recv(), self.settings.auth_timeout_s)
            message = json.loads(raw)
        except (asyncio.TimeoutError, ConnectionClosed, ValueError, TypeError):
            message = None
        token = message.get("token") if isinstance(message, dict) and message.get("op") == "hello" else None
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self.settings.token.encode()):
            log.warning("refused a connection from %s: no valid token in the first message", ws.remote_address)
            await self._send_ws(ws, _error(
                "AUTH_FAILED", "the bridge refused this panel: the first message must be hello with the bridge's token",
                "copy the token from the file `edidub bridge premiere --print-token` shows into the panel's settings",
            ))
            await ws.close(AUTH_CLOSE_CODE, "bad token")
            return None
        sid = message.get("session")
        if not isinstance(sid, str) or not 8 <= len(sid) <= 64:
            sid = uuid.uuid4().hex
        session = self._sessions.setdefault(sid, _Session(sid))
        old, session.ws = session.ws, ws
        if old is not None and old is not ws:
            await old.close(4000, "replaced by a newer connection of the same panel")
        for remembered in message.get("jobs") or []:  # jobs the panel still waits for (e.g. after a bridge restart)
            self._adopt(session, remembered)
        daemon = await self._daemon_status()
        await self._send(session, {"op": "welcome", "session": sid, "bridge_version": __version__, "daemon": daemon,
                                   "jobs": [self._job_summary(j) for j in session.jobs.values()]})
        for job in list(session.jobs.values()):  # what happened while the panel was away
            if job.last is not None and job.final is None:
                await self._send(session, job.last)
            if job.final is not None:
                await self._send(session, job.final)
        log.info("panel session %s connected", sid[:8])
        return session

    def _adopt(self, session: _Session, data: Any) -> None:
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str) or data["job_id"] in session.jobs:
            return
        place = data.get("place") if isinstance(data.get("place"), dict) else {}
        job = _Job(data["job_id"][:64], str(data.get("shot_id") or "")[:200], str(data.get("item") or "")[:200],
                   str(data.get("name") or "")[:200], place, kind="adapt" if data.get("kind") == "adapt" else "dub")
        session.jobs[job.job_id] = job
        self._start_watching(job.job_id, session.id, job.kind)

    # -- messages ---------------------------------------------------------------------------------
    async def _send_ws(self, ws: ServerConnection, message: dict[str, Any]) -> bool:
        try:
            await ws.send(json.dumps(message))
            return True
        except ConnectionClosed:
            return False

    async def _send(self, session: _Session, message: dict[str, Any]) -> None:
        ws = session.ws
        if ws is not None and not await self._send_ws(ws, message) and session.ws is ws:
            session.ws = None

    async def _dispatch(self, session: _Session, ws: ServerConnection, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "dub":
            await self._on_dub(session, message)
        elif op == "adapt":
            await self._on_adapt(session, message)
        elif op == "cancel":
            ids = message.get("job_ids")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise InvalidArgumentError("cancel: job_ids must be a list of job ids")
            results = []
            for job_id in ids[:1000]:
                try:
                    reply = await self._call(lambda c, j=job_id: c.cancel(j))
                    results.append({"job_id": job_id, "ok": True, "state": reply.state.value if hasattr(reply, "state") else None})
                except EdidubError as err:
                    results.append({"job_id": job_id, "ok": False, "code": err.code, "message": err.message})
            await self._send(session, {"op": "cancel_reply", "request_id": message.get("request_id"), "results": results})
        elif op == "ack":
            job = session.jobs.pop(str(message.get("job_id")), None)
            if job is not None:
                self._stop_watching(job.job_id)
        elif op == "status":
            await self._send(session, {"op": "status_reply", "request_id": message.get("request_id"),
                                       "daemon": await self._daemon_status(),
                                       "jobs": [self._job_summary(j) for j in session.jobs.values()]})
        elif op == "hello":
            await self._send(session, _error("INVALID_ARG", "already connected: hello is only the first message"))
        else:
            raise InvalidArgumentError(f"unknown op {str(op)[:40]!r}", hint="ops: dub, adapt, cancel, ack, status")

    async def _on_dub(self, session: _Session, message: dict[str, Any]) -> None:
        request_id = message.get("request_id")
        # Picture only: placed with an overwrite (or an insert on a new track), a clip with sound would cover the
        # editor's dub line on the audio track; a video-only item touches nothing but its video track.
        output = OutputSpec(dir=self.settings.output_dir, codec=self.settings.codec, audio=False)
        plan = await asyncio.to_thread(plan_dub, message, output=output, media_info=self._media_info)
        if self._daemon_info is None:
            await self._daemon_status()  # learn the output root (and whether it is up at all)
        shots = plan.shots
        if self.settings.output_dir is None and not (self._daemon_info or {}).get("output_root"):
            shots = [replace(s, request=replace(s.request, output=replace(s.request.output, dir=str(Path(s.request.source.path).parent))))
                     for s in shots]
        jobs: list[_Job] = []
        if shots:
            try:
                ids = await self._call(lambda c: c.submit([s.request for s in shots], priority=Priority.INTERACTIVE))
            except DaemonDownError as err:
                await self._send(session, _from_exc(err, request_id=request_id))
                return
            for shot, job_id in zip(shots, ids, strict=True):
                place = {"ticks": shot.place_ticks, "video_track_index": shot.track_index + 1, "audio_track_index": plan.dub_track_index}
                job = _Job(job_id, shot.request.shot_id, shot.item, shot.name, place,
                           [shot.request.source.start_frame, shot.request.source.end_frame])
                session.jobs[job_id] = job
                jobs.append(job)
        await self._send(session, {
            "op": "accepted", "request_id": request_id, "sequence": plan.sequence, "rate": f"{plan.rate.numerator}/{plan.rate.denominator}",
            "jobs": [self._job_summary(j) | {"record": [s.record_start_frame, s.record_end_frame]} for j, s in zip(jobs, shots)],
            "skipped": plan.skipped, "warnings": plan.warnings,
        })
        for job in jobs:
            self._start_watching(job.job_id, session.id)

    async def _on_adapt(self, session: _Session, message: dict[str, Any]) -> None:
        """The selected takes → an adapt job (interactive: the editor watches it); the bundle comes with its ``done``."""
        plan = await asyncio.to_thread(plan_adapt, message, media_info=self._media_info)
        s = self.settings
        given = plan.steps is not None or plan.minutes is not None
        steps, minutes = (plan.steps, plan.minutes) if given else (s.adapt_steps, s.adapt_minutes)
        validate_every = plan.validate_every or s.adapt_validate_every
        job_id, bundle_path = await self._call(lambda c: c.adapt(plan.name, plan.clips(), steps=steps, minutes=minutes,
                                                                 validate_every=validate_every, priority=Priority.INTERACTIVE))
        job = _Job(job_id, f"adapt:{plan.name}", "", plan.name, {}, kind="adapt")
        session.jobs[job_id] = job
        await self._send(session, {"op": "adapt_accepted", "request_id": plan.request_id, "job": self._job_summary(job),
                                   "bundle_path": bundle_path, "takes": plan.takes, "skipped": plan.skipped,
                                   "budget": {"steps": steps, "minutes": minutes, "validate_every": validate_every}})
        self._start_watching(job_id, session.id, "adapt")

    @staticmethod
    def _job_summary(job: _Job) -> dict[str, Any]:
        return {"job_id": job.job_id, "shot_id": job.shot_id, "item": job.item, "name": job.name, "place": job.place,
                "source_frames": job.frames, "kind": job.kind, "state": (job.final or job.last or {}).get("state", "queued")}

    # -- watching jobs (a thread) -----------------------------------------------------------------
    def _start_watching(self, job_id: str, session_id: str, kind: str = "dub") -> None:
        with self._watch_lock:
            self._watch[job_id] = (session_id, kind)
        self._wake.set()

    def _stop_watching(self, job_id: str) -> None:
        with self._watch_lock:
            self._watch.pop(job_id, None)

    def _post(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(fn(*args)))
            except RuntimeError:
                pass

    def _watch_loop(self) -> None:
        client = self._make_client()
        down = False
        try:
            while not self._stopping.is_set():
                with self._watch_lock:
                    watched = list(self._watch.items())
                for job_id, (session_id, kind) in watched:
                    if self._stopping.is_set():
                        break
                    try:
                        view = client.status(job_id)
                        final = None
                        if view.state is JobState.DONE:
                            final = {"bundle": client.adapted(job_id)} if kind == "adapt" else {"clip": client.result(job_id).to_dict()}
                    except DaemonDownError as err:
                        if not down:
                            down = True
                            self._post(self._daemon_notice, {"op": "daemon", "ok": False, "code": err.code, "message": err.message, "hint": err.hint})
                        break
                    except EdidubError as err:  # the daemon does not know the job (store wiped), or its result is gone
                        self._stop_watching(job_id)
                        self._post(self._job_update, session_id, job_id, {"state": "failed", "error": {"code": err.code, "message": err.message, "hint": err.hint}}, True)
                        continue
                    if down:
                        down = False
                        self._post(self._daemon_notice, {"op": "daemon", "ok": True, "message": "the EdiDub daemon answers again"})
                    update = {"state": view.state.value, "stage": view.stage, "frames_done": view.frames_done,
                              "frames_total": view.frames_total, "eta_s": view.eta_s}
                    if view.state is JobState.FAILED or view.state is JobState.CANCELLED:
                        error = view.error
                        update["error"] = None if error is None else {"code": error.code, "message": error.message,
                                                                     "hint": (error.details or {}).get("hint")}
                    if final:
                        update.update(final)
                    if view.state.terminal:
                        self._stop_watching(job_id)
                    self._post(self._job_update, session_id, job_id, update, view.state.terminal)
                self._wake.wait(1.0 if down else self.settings.poll_s)
                self._wake.clear()
        finally:
            client.close()

    async def _daemon_notice(self, message: dict[str, Any]) -> None:
        for session in self._sessions.values():
            if session.jobs:
                session.daemon_notice = message
                await self._send(session, message)

    async def _job_update(self, session_id: str, job_id: str, update: dict[str, Any], terminal: bool) -> None:
        session = self._sessions.get(session_id)
        job = session.jobs.get(job_id) if session else None
        if job is None or job.final is not None:
            return
        base = {"job_id": job.job_id, "shot_id": job.shot_id, "item": job.item, "name": job.name, "kind": job.kind}
        if terminal:
            state = JobState(update["state"])
            message = {"op": _TERMINAL_OP[state], **base, "state": state.value, "place": job.place}
            clip = update.get("clip")
            if clip is not None:
                message.update(path=clip["path"], rate=clip["rate"], timecode=clip["timecode"], frames=[clip["start_frame"], clip["end_frame"]],
                               frames_edited=clip["frames_edited"], frames_passed_through=clip.get("frames_passed_through") or [],
                               quality=(clip.get("qc") or {}).get("quality") or {}, model=(clip.get("model") or {}).get("name"))
            if update.get("bundle") is not None:
                message["bundle"] = update["bundle"]
            if update.get("error"):
                message["error"] = update["error"]
            job.final = message
            await self._send(session, message)
            return
        message = {"op": "progress", **base, **{k: update.get(k) for k in ("state", "stage", "frames_done", "frames_total", "eta_s")}}
        if message != job.last:
            job.last = message
            await self._send(session, message)
