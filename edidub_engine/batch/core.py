"""``edidub batch``: dub every shot of a timeline that has a dub line, resumably, and write the dubbed timeline.

Where the shots render (:class:`BatchConfig.mode`):

``auto`` (default)
    the local daemon when one answers ``hello`` at ``$EDIDUB_DAEMON`` / ``tcp://127.0.0.1:47610``
    within a second and ``--models`` was not given (the daemon has its own models); otherwise
    **in-process**: a :class:`~edidub_engine.render.ShotRenderer` is loaded once and renders shot
    after shot — the same code the daemon's worker runs, without a daemon to start, stop and
    point at the media.  (The issue says "or starts one": a daemon started only for this batch
    would add a process, a socket and a store for no gain; in-process rendering *is* the daemon's
    runner.)
``local``
    always in-process (``--no-daemon``).
``daemon``
    the daemon at ``--daemon ENDPOINT``; an error when it does not answer.  The rendered-clip
    folder must lie under the daemon's media roots.  Job ids are recorded in the state file, so an
    interrupted batch picks its jobs up again (the daemon went on rendering them meanwhile).
``ray``
    Ray actors (:mod:`.ray_runner`), ``--ray ADDRESS`` or ``--ray local``.

Resuming: ``<output>.edidub-batch.json`` (next to the dubbed timeline) records, per finished shot,
its request's fingerprint, its :class:`RenderedClip` and the rendered file's size and mtime; a rerun
reuses a shot whose request is unchanged and whose file is still there, unchanged.  The state is
rewritten (atomically) after every finished shot, before anything else happens.  Rendered clips
are never overwritten: a file in the way that the state does not vouch for fails that shot
(``OUTPUT_EXISTS``).

The dubbed timeline is written only when every shot rendered (else the summary lists the
failures, the state keeps the finished shots, and a rerun retries the rest), unless
``allow_partial`` (``--partial``) leaves the failed shots out.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edidub_engine.commandline import StageProgress, log_line
from edidub_engine.errors import EdidubError, InvalidArgumentError, OutputExistsError
from edidub_engine.files import write_text_atomically
from edidub_engine.shot import DubOptions, RenderedClip, ShotRequest

STATE_SUFFIX = ".edidub-batch.json"
SUMMARY_SUFFIX = ".summary.json"
MODES = ("auto", "local", "daemon", "ray")

ShotProgress = Callable[[str, str, int, int], None]  # (shot_id, stage, done, total)
ShotDone = Callable[[str, RenderedClip], None]


def state_path_for(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.name + STATE_SUFFIX)


def default_output(timeline: str | os.PathLike) -> Path:
    """``CUT.otio`` → ``CUT.dubbed.otio`` (an FCP7 ``.xml`` stays ``.xml``; anything else becomes ``.otio``)."""
    path = Path(timeline)
    suffix = path.suffix.lower() if path.suffix.lower() in (".otio", ".xml") else ".otio"
    return path.with_name(f"{path.stem}.dubbed{suffix}")


@dataclass
class BatchConfig:
    timeline: Path
    dub_track: str | None
    output: Path | None = None  # default: CUT.dubbed.otio beside the cut
    line_tracks: list[tuple[str, str]] | None = None  # two-shots: (face, its dub track), instead of dub_track
    speakers: str | None = None  # "auto": each shot's dub line shared out to the faces that spoke it
    picture_tracks: list[str] | None = None
    language: str = "FR"
    media_dir: Path | None = None  # default: <output stem>_media/ beside the output
    models: str | None = None
    codec: str = "prores_hq"
    options: DubOptions = field(default_factory=DubOptions)
    handles: int | None = 12
    mode: str = "auto"
    daemon: str | None = None
    ray: str | None = None
    ray_actors: int | None = None
    cache_dir: Path | None = None
    no_cache: bool = False
    allow_partial: bool = False
    quiet: bool = False
    timeline_rate: str | None = None  # EDLs only
    timeline_name: str | None = None  # files holding several timelines (AAF, FCP X)
    adapt: list[str] = field(default_factory=list)  # clip-name patterns, one per actor: adapt before rendering (batch.adaptation)
    adapt_minutes: float | None = None  # each actor's budget (with neither: 20 minutes)
    adapt_steps: int | None = None

    def resolved_output(self) -> Path:
        return Path(self.output).expanduser().absolute() if self.output else default_output(Path(self.timeline).expanduser().absolute())

    def resolved_media_dir(self) -> Path:
        if self.media_dir is not None:
            return Path(self.media_dir).expanduser().absolute()
        out = self.resolved_output()
        return out.with_name(f"{out.stem.replace('.', '_')}_media")


@dataclass
class BatchResult:
    summary: Any  # otio_adapters.batch.BatchSummary
    timeline: Any | None  # the dubbed otio Timeline (None when nothing was written)
    output: Path
    state_path: Path
    rendered: list[RenderedClip]
    mode: str

    @property
    def complete(self) -> bool:
        return not self.summary.failed


# ------------------------------------------------------------------------------------------ state
class BatchState:
    """The resumable record of one batch (a JSON file, rewritten whole after every change)."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    @classmethod
    def open(cls, path: Path, *, timeline: str, dub_track: str, language: str) -> BatchState:
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                raise InvalidArgumentError(f"batch state {path} is not readable JSON", hint="delete it to start the batch afresh") from None
            if not isinstance(data, dict) or data.get("edidub_batch") != 1 or not isinstance(data.get("shots"), dict):
                raise InvalidArgumentError(f"{path} is not an EdiDub batch state", hint="delete it or choose another -o")
            return cls(path, data)
        return cls(path, {
            "edidub_batch": 1, "batch_id": uuid.uuid4().hex, "timeline": timeline, "dub_track": dub_track,
            "language": language, "created_at": _now(), "shots": {},
        })

    @property
    def batch_id(self) -> str:
        return self.data["batch_id"]

    def entry(self, shot_id: str) -> dict[str, Any]:
        return self.data["shots"].get(shot_id) or {}

    def reusable(self, shot: ShotRequest, fingerprint: str) -> RenderedClip | None:
        """The finished clip of ``shot`` when the request is unchanged and its file is still there, unchanged."""
        entry = self.entry(shot.shot_id)
        if entry.get("fingerprint") != fingerprint or not isinstance(entry.get("clip"), dict):
            return None
        try:
            clip = RenderedClip.from_dict(entry["clip"])
            stat = os.stat(clip.path)
        except (OSError, TypeError, KeyError, ValueError, EdidubError):
            return None
        file = entry.get("file") or {}
        if stat.st_size != file.get("size") or stat.st_mtime_ns != file.get("mtime_ns"):
            return None
        return clip

    def finished(self, shot: ShotRequest, fingerprint: str, clip: RenderedClip, *, how: str) -> None:
        stat = os.stat(clip.path)
        self.data["shots"][shot.shot_id] = {
            "fingerprint": fingerprint, "clip": clip.to_dict(), "file": {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns},
            "finished_at": _now(), "rendered_by": how, "job_id": self.entry(shot.shot_id).get("job_id"),
        }
        self.save()

    def submitted(self, shot: ShotRequest, fingerprint: str, job_id: str, endpoint: str) -> None:
        self.data["shots"][shot.shot_id] = {"fingerprint": fingerprint, "job_id": job_id, "daemon": endpoint, "submitted_at": _now()}

    def forget(self, shot_id: str) -> None:
        self.data["shots"].pop(shot_id, None)

    def save(self) -> None:
        write_text_atomically(self.path, json.dumps(self.data, indent=1, sort_keys=True) + "\n")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class BatchProgress:
    """An overall bar (shots) and, per running shot, a bar per stage (frames or steps), on stderr.

    The per-stage bars are :class:`~edidub_engine.commandline.StageProgress`'s: one per stage for
    the shot's whole render (a bar rebuilt at each stage switch showed burst rates), and log lines
    instead of bars when stderr is not a terminal.
    """

    def __init__(self, total: int, *, done: int = 0, enabled: bool = True):
        self.enabled = enabled and total > 0
        self.total, self.done = total, done
        self.stages = StageProgress(enabled=self.enabled, units={"track": "frame", "render": "frame", "": "step"}, first_position=1)
        self._overall = None
        if self.enabled and not self.stages.log:
            from tqdm import tqdm

            self._overall = tqdm(total=total, initial=done, desc="batch", unit="shot", file=sys.stderr, position=0, leave=True)

    def update(self, shot_id: str, stage: str, done: int, total: int) -> None:
        self.stages.update(f"{shot_id} {stage}", done, total)

    def shot_finished(self, shot_id: str) -> None:
        if not self.enabled:
            return
        self.stages.close(f"{shot_id} ")
        self.done += 1
        if self._overall is not None:
            self._overall.update(1)
        else:
            log_line(f"batch: {shot_id} finished ({self.done} of {self.total} shots)")

    def close(self) -> None:
        self.stages.close()
        if self._overall is not None:
            self._overall.close()


# ------------------------------------------------------------------------------------------ executors
class _Callbacks:
    """What an executor reports: per-shot progress, a finished clip, a failure."""

    def __init__(self, progress: ShotProgress, done: Callable[[ShotRequest, RenderedClip], None],
                 failed: Callable[[ShotRequest, EdidubError], None]):
        self.progress, self.done, self.failed = progress, done, failed


def _render_locally(pending: Sequence[ShotRequest], cb: _Callbacks, renderer_factory: Callable[[], Any],
                    actor_factories: dict[str, Callable[[], Any]] | None = None) -> None:
    """Each shot with the renderer of its bundle: an actor's adapted one (``options.model``), else the batch's."""
    renderers: dict[str | None, Any] = {}
    for shot in pending:
        which = shot.options.model if actor_factories and shot.options.model in actor_factories else None
        if which not in renderers:
            renderers[which] = renderer_factory() if which is None else actor_factories[which]()
        renderer = renderers[which]
        try:
            clip = renderer.dub_shot(shot, progress=lambda stage, done, total, _id=shot.shot_id: cb.progress(_id, stage, done, total))
        except EdidubError as err:
            cb.failed(shot, err)
            continue
        cb.done(shot, clip)


def default_renderer_factory(config: BatchConfig) -> Callable[[], Any]:
    def make():
        from edidub_engine.cache import InversionCache
        from edidub_engine.render import LoadedModels, ShotRenderer

        cache = None if config.no_cache else InversionCache(config.cache_dir)
        return ShotRenderer(LoadedModels.load(config.models), cache=cache)

    return make


def _render_with_daemon(client, endpoint: str, pending: Sequence[ShotRequest], fingerprints: dict[str, str], state: BatchState,
                        cb: _Callbacks) -> None:
    from edidub_engine.daemon.protocol import MAX_SHOTS_PER_SUBMIT, JobNotFoundError, JobState

    jobs: dict[str, str] = {}
    to_submit: list[ShotRequest] = []
    for shot in pending:
        job_id = state.entry(shot.shot_id).get("job_id")
        if job_id and state.entry(shot.shot_id).get("fingerprint") == fingerprints[shot.shot_id]:
            try:
                view = client.status(job_id)
            except JobNotFoundError:
                view = None
            if view is not None and view.state not in (JobState.FAILED, JobState.CANCELLED):
                jobs[shot.shot_id] = job_id  # still queued or running in the daemon, or done: pick it up
                continue
        to_submit.append(shot)
    for i in range(0, len(to_submit), MAX_SHOTS_PER_SUBMIT):
        chunk = to_submit[i : i + MAX_SHOTS_PER_SUBMIT]
        ids = client.submit(chunk, priority="batch")
        for shot, job_id in zip(chunk, ids):
            jobs[shot.shot_id] = job_id
            state.submitted(shot, fingerprints[shot.shot_id], job_id, endpoint)
        state.save()
    for shot in pending:
        job_id = jobs[shot.shot_id]
        try:
            clip = client.wait(job_id, progress=lambda ev, _id=shot.shot_id: cb.progress(_id, ev.stage or ev.state.value, ev.frames_done, ev.frames_total))
        except EdidubError as err:
            cb.failed(shot, err)
            continue
        cb.done(shot, clip)


def _probe_daemon(endpoint: str | None, timeout_s: float):
    """A connected Client when a daemon answers hello, else None."""
    from edidub_engine.client import Client
    from edidub_engine.daemon.protocol import DaemonDownError

    client = Client(endpoint, timeout_s=timeout_s, name="edidub batch")
    try:
        client.hello()
    except DaemonDownError:
        client.close()
        return None
    return client


# ------------------------------------------------------------------------------------------ the batch
def run_batch(
    config: BatchConfig,
    *,
    renderer_factory: Callable[[], Any] | None = None,
    on_shot_done: ShotDone | None = None,
    on_progress: ShotProgress | None = None,
) -> BatchResult:
    """Plan, render what is not rendered yet, write the dubbed timeline and the summary.

    ``renderer_factory()`` → an object with ``dub_shot(request, progress=)`` (in-process mode;
    default: :class:`~edidub_engine.render.ShotRenderer` on ``config.models``).
    ``on_shot_done(shot_id, clip)`` is called after the state file records the shot.
    """
    from otio_adapters import read_timeline, write_dubbed
    from otio_adapters.batch import BatchSummary, dubbed_timeline, format_shot_list, plan_batch, shot_fingerprint

    if config.mode not in MODES:
        raise InvalidArgumentError(f"batch mode {config.mode!r} is not one of {', '.join(MODES)}")
    output = config.resolved_output()
    if os.path.lexists(output):
        raise OutputExistsError(f"{output} already exists; EdiDub never overwrites a file",
                                hint="choose another -o, or move the existing timeline away", details={"path": str(output)})
    if not output.parent.is_dir():
        raise InvalidArgumentError(f"the folder of {output} does not exist", hint="create it or choose another -o")
    media_dir = config.resolved_media_dir()
    read = read_timeline(config.timeline, rate=config.timeline_rate, timeline_name=config.timeline_name)
    timeline = read.timeline
    plan = plan_batch(
        timeline, dub_track=config.dub_track, picture_tracks=config.picture_tracks or None, language=config.language,
        output_dir=str(media_dir), codec=config.codec, options=config.options, handles=config.handles, check_media_exists=True,
        line_tracks=config.line_tracks, speakers=config.speakers,
    )
    state = BatchState.open(state_path_for(output), timeline=str(Path(config.timeline).absolute()), dub_track=plan.shot_list.dub_track or "",
                            language=plan.language)
    summary = BatchSummary(batch_id=state.batch_id, skipped=list(plan.skipped), rate=plan.shot_list.rate)
    summary.notes.extend(read.warnings + plan.shot_list.warnings)

    say = (lambda text: None) if config.quiet else (lambda text: print(f"edidub batch: {text}", file=sys.stderr, flush=True))
    if not config.quiet:  # the dry run's table first: what will be dubbed, what is left out and why
        print(format_shot_list(plan.shot_list), file=sys.stderr, flush=True)
    shots, actor_factories = list(plan.shots), {}
    mode = client = endpoint = None
    if config.adapt and plan.shots:  # one adapted bundle per actor first; its name is part of each shot's fingerprint
        from .adaptation import adapt_actors, assign_bundles

        if config.mode == "ray":
            raise InvalidArgumentError("--adapt does not run on Ray yet", hint="adapt first (edidub adapt … -o DIR), then batch with --models DIR")
        mode, client, endpoint = _choose_mode(config, plan.shots)
        try:
            actors = adapt_actors(config, client=client if mode == "daemon" else None, log=say)
        except BaseException:
            if client is not None:
                client.close()
            raise
        shots = assign_bundles(plan.shots, actors)
        actor_factories = {a.name: default_renderer_factory(replace(config, models=str(a.path))) for a in actors if a.path is not None}
    fingerprints = {s.shot_id: shot_fingerprint(s) for s in shots}
    rendered: dict[str, RenderedClip] = {}
    pending: list[ShotRequest] = []
    for shot in shots:
        clip = state.reusable(shot, fingerprints[shot.shot_id])
        if clip is not None:
            rendered[shot.shot_id] = clip
            summary.reused.append(shot.shot_id)
        else:
            pending.append(shot)

    say(f"{Path(config.timeline).name}: {len(plan.shots)} shot(s) to dub" + (f" ({len(rendered)} already rendered)" if rendered else "")
        + f", {len(plan.skipped)} clip(s) skipped")
    if mode is None:
        mode, client, endpoint = _choose_mode(config, pending)
    if pending:
        say({"daemon": f"rendering {len(pending)} shot(s) through the daemon at {endpoint}",
             "ray": f"rendering {len(pending)} shot(s) on Ray ({config.ray or 'a local cluster'}); starting the workers…"}.get(
            mode, f"rendering {len(pending)} shot(s) in this process; loading the models…"))
        media_dir.mkdir(parents=True, exist_ok=True)
    if mode != "daemon":  # the daemon checks (and cleans) its own outputs
        pending = _clear_the_way(pending, state, summary)
    if plan.shots:  # nothing to dub leaves nothing behind, not even a state file
        state.save()

    progress = BatchProgress(len(plan.shots), done=len(rendered), enabled=not config.quiet)

    def report(shot_id: str, stage: str, done: int, total: int) -> None:
        progress.update(shot_id, stage, done, total)
        if on_progress is not None:
            on_progress(shot_id, stage, done, total)

    def done(shot: ShotRequest, clip: RenderedClip) -> None:
        rendered[shot.shot_id] = clip
        state.finished(shot, fingerprints[shot.shot_id], clip, how=mode)
        progress.shot_finished(shot.shot_id)
        if on_shot_done is not None:
            on_shot_done(shot.shot_id, clip)

    def failed(shot: ShotRequest, err: EdidubError) -> None:
        summary.failed[shot.shot_id] = err.to_dict()
        progress.shot_finished(shot.shot_id)

    cb = _Callbacks(report, done, failed)
    try:
        if pending:
            if mode == "daemon":
                _render_with_daemon(client, endpoint, pending, fingerprints, state, cb)
            elif mode == "ray":
                from .ray_runner import render_on_ray

                render_on_ray(pending, cb, address=config.ray or "local", models=config.models, actors=config.ray_actors,
                              cache_dir=None if config.no_cache else config.cache_dir)
            else:
                _render_locally(pending, cb, renderer_factory or default_renderer_factory(config), actor_factories)
    finally:
        progress.close()
        if client is not None:
            client.close()

    clips = [rendered[s.shot_id] for s in plan.shots if s.shot_id in rendered]
    summary.dubbed = [c.shot_id for c in clips]
    summary.media = {c.shot_id: str(c.path) for c in clips}
    summary.passthrough = {c.shot_id: [asdict(r) for r in c.frames_passed_through] for c in clips if c.frames_passed_through}
    summary.quality = {c.shot_id: (c.qc or {}).get("quality") for c in clips if (c.qc or {}).get("quality")}
    if mode == "local" and config.mode == "auto" and pending:
        summary.notes.append(f"no daemon answered; {len(pending)} shot(s) were rendered in this process")
    dubbed = None
    if clips and (not summary.failed or config.allow_partial):
        dubbed = dubbed_timeline(timeline, clips, language=plan.language, batch_id=state.batch_id, settings=plan.settings(),
                                 order=[s.shot_id for s in plan.shots])
        summary.notes.extend(write_dubbed(dubbed, output, language=plan.language))
        summary.output = str(output)
    elif not clips:
        summary.notes.append("no shot was dubbed; no timeline written")
    else:
        summary.notes.append("some shots failed: no timeline written (rerun to retry them, or pass --partial)")
    state.data["summary"] = summary.to_dict()
    if plan.shots:
        state.save()
    if summary.output:
        write_text_atomically(output.with_name(output.name + SUMMARY_SUFFIX), json.dumps(summary.to_dict(), indent=1) + "\n")
    return BatchResult(summary=summary, timeline=dubbed, output=output, state_path=state.path, rendered=clips, mode=mode)


def _choose_mode(config: BatchConfig, pending: Sequence[ShotRequest]):
    """(mode, client or None, endpoint or None)."""
    from edidub_engine.daemon.protocol import DaemonDownError

    if config.mode == "ray" or (config.mode == "auto" and config.ray):
        return "ray", None, None
    if config.mode == "local":
        return "local", None, None
    if config.mode == "daemon" or config.daemon:
        if not pending:
            return "daemon", None, config.daemon
        client = _probe_daemon(config.daemon, timeout_s=10.0)
        if client is None:
            raise DaemonDownError(f"no EdiDub daemon answered at {config.daemon or 'the default endpoint'}",
                                  hint="start one with `edidub serve --media-root DIR`, or leave out --daemon to render in this process")
        return "daemon", client, client.endpoint
    if config.models is None and pending:
        client = _probe_daemon(None, timeout_s=1.0)
        if client is not None:
            return "daemon", client, client.endpoint
    return "local", None, None


def _clear_the_way(pending: list[ShotRequest], state: BatchState, summary) -> list[ShotRequest]:
    """Remove what an interrupted render left (hidden partial files); fail shots whose output is in the way."""
    from edidub_engine.daemon.paths import CODEC_EXTENSIONS, partial_files, remove_partial

    keep = []
    for shot in pending:
        final = Path(shot.output.dir) / f"{shot.output.name}{CODEC_EXTENSIONS[shot.output.codec]}"
        for partial in partial_files(final):
            remove_partial(partial)
        if os.path.lexists(final):
            why = ("it or its request changed since this batch rendered it" if state.entry(shot.shot_id).get("clip")
                   else "this batch's state does not record it")
            err = OutputExistsError(f"shot {shot.shot_id!r}: {final} already exists and {why}; EdiDub never overwrites a file",
                                    hint="move or delete the file to render the shot again", details={"path": str(final)})
            summary.failed[shot.shot_id] = err.to_dict()
            continue
        keep.append(shot)
    return keep
