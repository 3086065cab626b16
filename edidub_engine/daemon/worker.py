"""One worker per device: a thread that keeps its runner (and so its models) loaded between jobs.

A thread, not a process, because the models must stay loaded across jobs and
progress and cancellation are then plain function calls; the heavy work
(torch, PyAV) releases the GIL, so the socket loop keeps answering.  A crash
of the whole process is the kill -9 case, which the store's recovery covers.

Runner contract: ``runner(request, *, progress, should_cancel) -> RenderedClip``;
``progress(stage, frames_done, frames_total)``; the runner polls
``should_cancel()`` between steps and raises
:class:`~edidub_engine.errors.CancelledError`; it publishes its output atomically.
A runner may also offer ``describe_models() -> list[dict]`` (for ``hello``/``models``); what a
runner will serve before it is loaded comes from the server's catalogue (:mod:`.catalogue`).
"""

from __future__ import annotations

import importlib
import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import zmq

from edidub_engine.daemon.protocol import (
    ErrorInfo,
    EventKind,
    InternalError,
    JobEvent,
    JobState,
    Message,
    MsgType,
    to_wire,
)
from edidub_engine.daemon.store import JobRecord, JobStore
from edidub_engine.errors import CancelledError, EdidubError
from edidub_engine.shot import RenderedClip, ShotRequest

__all__ = ["LiveProgress", "Runner", "RunnerFactory", "Worker", "import_named", "load_runner_factory"]

log = logging.getLogger("edidub.daemon")
_EVENT_INTERVAL_S = 0.1  # at most ~10 progress events a second per job; stage changes and the last frame always go out


class Runner(Protocol):
    def __call__(
        self, request: ShotRequest, *, progress: Callable[[str, int, int], None], should_cancel: Callable[[], bool]
    ) -> RenderedClip: ...


RunnerFactory = Callable[[str], Runner]  # device → runner


def import_named(name: str) -> Any:
    """The object a dotted name ``"pkg.module:attr"`` names (a runner, a factory, a catalogue)."""
    module, _, attr = name.partition(":")
    if not module or not attr:
        raise InternalError(f"{name!r} is not 'package.module:attribute'")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InternalError(f"cannot load {name!r} ({exc})", hint="check --runner / --runner-factory and the installation") from None


def load_runner_factory(*, runner: str | None, runner_factory: str | None) -> RunnerFactory:
    """A factory from dotted names ``"pkg.module:attr"``; imported lazily, in the worker thread."""
    if runner_factory:
        return lambda device: import_named(runner_factory)(device)
    if not runner:
        raise InternalError("no runner configured")
    return lambda device: import_named(runner)


@dataclass
class LiveProgress:
    """What a running job is doing now; shared between a worker and the socket loop (replaced whole, never mutated)."""

    stage: str | None = None
    frames_done: int = 0
    frames_total: int = 0
    eta_s: float | None = None


@dataclass
class _Stage:
    name: str
    started: float
    first_done: int


@dataclass
class WorkerShared:
    """What the server shares with its workers."""

    store: JobStore
    queue_cv: threading.Condition
    stopping: threading.Event
    live: dict[str, LiveProgress] = field(default_factory=dict)
    cancels: dict[str, threading.Event] = field(default_factory=dict)
    session: str = ""


class Worker(threading.Thread):
    """Claims jobs from the store and runs them, one at a time, on ``device``."""

    def __init__(self, *, device: str, factory: RunnerFactory, shared: WorkerShared, context: zmq.Context, events_endpoint: str):
        super().__init__(name=f"edidub-worker-{device}", daemon=True)
        self.device = device
        self._factory = factory
        self._shared = shared
        self._context = context
        self._events_endpoint = events_endpoint
        self.runner: Runner | None = None
        self.load_error: EdidubError | None = None
        self.models: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.restarts = 0  # times the loop survived an unexpected error (see ``run``)
        self.last_error: str | None = None
        self._push: zmq.Socket | None = None

    # -- thread -----------------------------------------------------------------------------------
    def run(self) -> None:
        self._push = self._context.socket(zmq.PUSH)
        self._push.linger = 1000
        self._push.connect(self._events_endpoint)
        try:
            self._load()
            while not self._shared.stopping.is_set():
                job = None
                try:
                    with self._shared.queue_cv:
                        job = None if self._shared.stopping.is_set() else self._shared.store.claim_next()
                        if job is None:
                            self._shared.queue_cv.wait(timeout=1.0)
                            continue
                    self._run(job)
                except Exception as exc:  # never expected (a store failure…): fail the job clearly, keep the worker
                    self._survive(job, exc)
        finally:
            self._push.close()

    def _survive(self, job: JobRecord | None, exc: Exception) -> None:
        """The worker outlives an error outside any runner: the job it held fails with the reason, the loop restarts."""
        self.restarts += 1
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.error("worker %s: unexpected error (restart %d):\n%s", self.device, self.restarts, traceback.format_exc())
        if job is None:
            time.sleep(1.0)  # a failing store: do not spin
            return
        err = InternalError(f"shot {job.shot_id!r}: the worker on {self.device} failed outside the render ({self.last_error})",
                            hint="the daemon's log has the traceback; submit the shot again")
        try:
            self._shared.store.finish(job.job_id, JobState.FAILED, error=err.to_dict(), progress=self._last(job.job_id))
            self._event(job.job_id, EventKind.FAILED, JobState.FAILED, error=err.to_dict())
        except Exception:  # the store is down too: the job stays 'running' and is re-queued on the next start
            log.exception("worker %s could not record job %s as failed", self.device, job.job_id)
        finally:
            self._shared.live.pop(job.job_id, None)
            self._shared.cancels.pop(job.job_id, None)

    def health(self) -> dict[str, Any]:
        """What ``hello`` reports of this worker."""
        return {"device": self.device, "alive": self.is_alive(), "ready": self.ready.is_set() and self.load_error is None,
                "error": None if self.load_error is None else self.load_error.message, "restarts": self.restarts,
                "last_error": self.last_error}

    def _load(self) -> None:
        try:
            self.runner = self._factory(self.device)
            describe = getattr(self.runner, "describe_models", None)
            if callable(describe):
                self.models = list(describe())
            log.info("worker %s ready", self.device)
        except EdidubError as err:
            self.load_error = err
        except Exception as exc:
            self.load_error = InternalError(f"loading the runner on {self.device} failed: {type(exc).__name__}: {exc}")
            log.error("worker %s: %s", self.device, traceback.format_exc())
        if self.load_error is not None:
            log.error("worker %s cannot run jobs: %s", self.device, self.load_error)
        self.ready.set()

    # -- one job ----------------------------------------------------------------------------------
    def _run(self, job: JobRecord) -> None:
        shared = self._shared
        cancel = shared.cancels.setdefault(job.job_id, threading.Event())
        if job.cancel_requested:
            cancel.set()
        shared.live[job.job_id] = LiveProgress()
        self._event(job.job_id, EventKind.STARTED, JobState.RUNNING)
        stage: _Stage | None = None
        last_sent = 0.0

        def progress(name: str, done: int, total: int) -> None:
            nonlocal stage, last_sent
            now = time.monotonic()
            changed = stage is None or stage.name != name
            if changed:
                stage = _Stage(str(name), now, int(done))
            eta = None
            if not changed and done > stage.first_done and total >= done:
                eta = (now - stage.started) / (done - stage.first_done) * (total - done)
            live = LiveProgress(stage.name, int(done), int(total), None if eta is None else round(eta, 3))
            shared.live[job.job_id] = live
            if changed or done >= total or now - last_sent >= _EVENT_INTERVAL_S:
                last_sent = now
                self._event(job.job_id, EventKind.PROGRESS, JobState.RUNNING, live=live)

        def should_cancel() -> bool:
            return cancel.is_set() or shared.stopping.is_set()

        try:
            if self.load_error is not None:
                raise self.load_error
            if "adapt" in job.request:
                self._adapt(job, progress, should_cancel)
                return
            request = ShotRequest.from_dict(job.request)
            clip = self.runner(request, progress=progress, should_cancel=should_cancel)
            if not isinstance(clip, RenderedClip):
                raise InternalError(f"the runner returned {type(clip).__name__}, not a RenderedClip")
        except CancelledError as err:
            if cancel.is_set():
                if "adapt" in job.request:  # cancelled on purpose: its resumable state goes too (a restart keeps it)
                    from edidub_engine.training.adapt import work_folder

                    shutil.rmtree(work_folder(job.request["adapt"]["out"]), ignore_errors=True)
                last = self._last(job.job_id)
                shared.store.finish(job.job_id, JobState.CANCELLED, error=err.to_dict(), progress=last)
                self._event(job.job_id, EventKind.CANCELLED, JobState.CANCELLED, error=err.to_dict())
            else:  # the daemon is stopping: the job resumes on the next start
                shared.store.requeue(job.job_id)
                log.info("job %s re-queued for the next start", job.job_id)
        except EdidubError as err:
            shared.store.finish(job.job_id, JobState.FAILED, error=err.to_dict(), progress=self._last(job.job_id))
            self._event(job.job_id, EventKind.FAILED, JobState.FAILED, error=err.to_dict())
        except Exception as exc:
            log.error("job %s (shot %s) failed:\n%s", job.job_id, job.shot_id, traceback.format_exc())
            err = InternalError(f"shot {job.shot_id!r} failed: {type(exc).__name__}: {exc}", hint="the daemon's log has the traceback")
            shared.store.finish(job.job_id, JobState.FAILED, error=err.to_dict(), progress=self._last(job.job_id))
            self._event(job.job_id, EventKind.FAILED, JobState.FAILED, error=err.to_dict())
        else:
            # a finished job reads as finished, whatever the runner's last report said: every frame rendered
            frames = clip.end_frame - clip.start_frame
            done = LiveProgress("render", frames, frames, 0.0)
            shared.store.finish(job.job_id, JobState.DONE, result=clip.to_dict(), progress=(done.stage, frames, frames))
            self._event(job.job_id, EventKind.DONE, JobState.DONE, live=done, output_path=clip.path)
        finally:
            shared.live.pop(job.job_id, None)
            shared.cancels.pop(job.job_id, None)

    def _adapt(self, job: JobRecord, progress, should_cancel) -> None:
        """An ``adapt`` job: the runner fine-tunes and publishes the bundle; this worker then serves it too."""
        from edidub_engine.training.adapt import run_adapt_job

        bundles = getattr(self.runner, "bundles", None)
        if not isinstance(bundles, dict):
            raise InternalError("this daemon's runner cannot adapt models", hint="serve with the default runner (edidub serve --models …)")
        result = run_adapt_job(job.request["adapt"], bundles=bundles, default=self.runner.default, device=self.runner.device,
                               progress=progress, should_cancel=should_cancel)
        bundles[result["name"]] = Path(result["path"])  # served from now on
        describe = getattr(self.runner, "describe_models", None)
        if callable(describe):
            self.models = list(describe())
        steps = int(result.get("steps", 0))
        done = LiveProgress("adapt", steps, steps, 0.0)
        self._shared.store.finish(job.job_id, JobState.DONE, result={"bundle": result}, progress=(done.stage, steps, steps))
        self._event(job.job_id, EventKind.DONE, JobState.DONE, live=done, output_path=result.get("path"))

    def _last(self, job_id: str) -> tuple[str | None, int, int]:
        live = self._shared.live.get(job_id) or LiveProgress()
        return live.stage, live.frames_done, live.frames_total

    def _event(self, job_id: str, kind: EventKind, state: JobState, *, live: LiveProgress | None = None, error: dict | None = None, output_path: str | None = None) -> None:
        live = live or self._shared.live.get(job_id) or LiveProgress()
        event = JobEvent(
            job_id=job_id,
            event=kind,
            state=state,
            frames_done=live.frames_done,
            frames_total=live.frames_total,
            stage=live.stage,
            eta_s=live.eta_s,
            output_path=output_path,
            error=ErrorInfo(**error) if error else None,
        )
        message = Message.make(MsgType.JOB_EVENT, to_wire(event), session=self._shared.session)
        self._push.send_multipart([f"job.{job_id}".encode(), message.pack()])
