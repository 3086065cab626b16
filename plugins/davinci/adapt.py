"""Workspace ▸ Scripts ▸ Edit ▸ EdiDub Adapt to Actor: a model fine-tuned on the actor's own takes, then used by the
project's dubs.

* **The takes**: the selected video clips (``Timeline.GetSelectedClips()``, Resolve 21.0.4+); with no selection,
  the clips of the picture track whose middle lies between the timeline's In and Out marks
  (``Timeline.GetMarkInOut()``, Resolve 19.1+, frames from the timeline's start); with no marks either, the clip
  under the playhead, found as Dub Shot finds it.  Clips on an EdiDub track are dubs, not the actor: left out.
* **Each take** is its media file and the source frames the timeline shows (:mod:`.reading`: file-relative
  ``GetLeftOffset()``, the clip's duration at the media's rate, times its speed).  The daemon learns from the
  picture with the production sound in that file; the timeline's audio tracks play no part.  Takes shorter than
  :data:`MIN_TAKE_FRAMES` are left out and said; clips without media (titles, generators) too; offline media stops
  the script, as in Dub Shot.
* **The name**: the project's ``actor`` setting, else the first word all the takes' clip names share (``ANNA`` for
  ``ANNA_sc12_t3`` and ``ANNA_sc14_t1``); asked, with that proposal, where Resolve shows windows.  The bundle is
  that name, or ``NAME-v2``, ``-v3``… when the daemon already serves one by it (outputs are never overwritten).
* **The job**: ``Client.adapt`` with the project's budget (``adapt_minutes``, ``adapt_steps``), watched like a dub
  (progress, Cancel).  When it is done the bundle's name becomes the project's ``model`` setting, so Dub Shot and
  Dub Timeline dub with the actor's model from then on (``options.model``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import opentimelineio as otio

from edidub_engine.client import Client, JobState, JobView
from edidub_engine.errors import EdidubError
from edidub_engine.shot import MIN_ADAPT_TAKE_FRAMES

from .errors import ResolveScriptError
from .jobs import connect, watch
from .progress import ConsoleProgress, make_progress
from .reading import TRACK_NAME, _Context, _context, _find_shot_item, _items, _track_index, _video_clip
from .settings import ProjectSettings, load_settings, save_settings, settings_path

__all__ = ["MIN_TAKE_FRAMES", "AdaptReport", "Take", "actor_proposal", "adapt_to_actor", "bundle_name"]

MIN_TAKE_FRAMES = MIN_ADAPT_TAKE_FRAMES  # the engine's (edidub_engine.shot): 50 to train on, 25 held back
MAX_TAKES = 100  # adapt_request.clips
_WORD = re.compile(r"[^\s_.\-]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Take:
    """One take: the timeline clip's name and the source frames ``[start_frame, end_frame)`` of its media file."""

    clip: str
    path: str
    start_frame: int
    end_frame: int

    def to_wire(self) -> dict[str, Any]:
        return {"path": self.path, "start_frame": self.start_frame, "end_frame": self.end_frame}


@dataclass
class AdaptReport:
    """What Adapt to Actor did, for the message and for tests; ``bundle`` is the daemon's ``result_reply.bundle``."""

    name: str
    job_id: str
    takes: list[Take]
    skipped: list[str] = field(default_factory=list)
    bundle: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and bool(self.bundle)


# ----------------------------------------------------------------------------------------------
# the takes


def _take_items(ctx: _Context) -> tuple[list[Any], str]:
    """The clips to learn from, and how they were found (for the message)."""
    tl = ctx.timeline

    def actor(item: Any) -> bool:
        where = _track_index(item)
        return where is not None and where[0] == "video" and (tl.GetTrackName("video", where[1]) or "") != TRACK_NAME

    if "GetSelectedClips" in dir(tl):  # Resolve 21.0.4+
        selected = [i for i in (tl.GetSelectedClips() or []) if (_track_index(i) or ("", 0))[0] == "video"]
        takes = [i for i in selected if actor(i)]
        if takes:
            return takes, f"{len(takes)} selected clip(s)"
        if selected:
            raise ResolveScriptError("the selected clips are EdiDub dubs", "select the actor's original takes underneath", "IS_DUB")
    track = ctx.settings.picture_track or 1
    if "GetMarkInOut" in dir(tl):  # Resolve 19.1+: {"video": {"in": …, "out": …}}, keys left out when not set
        marks = (tl.GetMarkInOut() or {}).get("video") or {}
        if "in" in marks and "out" in marks:
            lo, hi = ctx.start_frame + int(marks["in"]), ctx.start_frame + int(marks["out"])
            inside = [i for i in _items(tl, "video", track) if lo <= (int(i.GetStart()) + int(i.GetEnd())) / 2 <= hi]
            if inside:
                return inside, f"{len(inside)} clip(s) between In and Out on V{track}"
    try:
        item, picture = _find_shot_item(ctx)
    except ResolveScriptError as err:
        if err.code != "NO_CLIP":
            raise
        raise ResolveScriptError(
            "no clip is selected",
            f"select the actor's takes on the timeline (before Resolve 21.0.4: mark In and Out around them on V{track}, "
            "or park the playhead over one) and run Adapt to Actor again",
            "NO_CLIP",
        ) from None
    if (tl.GetTrackName("video", picture) or "") == TRACK_NAME:
        raise ResolveScriptError("the clip under the playhead is an EdiDub dub", "select the actor's original takes", "IS_DUB")
    return [item], "the clip under the playhead"


def _take(ctx: _Context, item: Any) -> Take:
    """The clip's media file and the source frames it shows (raises NO_MEDIA / OFFLINE as Dub Shot does)."""
    clip = _video_clip(ctx, item, "take")
    speed = 1.0
    for effect in clip.effects:
        if isinstance(effect, otio.schema.LinearTimeWarp):
            speed *= float(effect.time_scalar)
    start = round(clip.source_range.start_time.value)
    end = start + round(clip.source_range.duration.value * speed)
    available = clip.media_reference.available_range
    if available is not None:
        end = min(end, round(available.end_time_exclusive().value))
    return Take(clip.name, clip.media_reference.target_url, start, end)


def _takes(ctx: _Context, items: list[Any]) -> tuple[list[Take], list[str], list[str]]:
    """The takes to send (each range once), what was left out and why, and the clip names of every usable take."""
    takes: list[Take] = []
    skipped: list[str] = []
    names: list[str] = []
    for item in sorted(items, key=lambda i: ((_track_index(i) or ("", 0))[1], int(i.GetStart()))):
        try:
            take = _take(ctx, item)
        except ResolveScriptError as err:
            if err.code != "NO_MEDIA":
                raise
            skipped.append(f"{item.GetName() or 'clip'!r}: no media file (a title, generator or compound clip)")
            continue
        frames = take.end_frame - take.start_frame
        if frames < MIN_TAKE_FRAMES:
            skipped.append(f"{take.clip!r}: {frames} frames, fewer than the {MIN_TAKE_FRAMES} an adaptation needs")
            continue
        names.append(take.clip)
        if all((t.path, t.start_frame, t.end_frame) != (take.path, take.start_frame, take.end_frame) for t in takes):
            takes.append(take)  # a take cut in twice counts once
    if not takes:
        raise ResolveScriptError(
            "no take to adapt on" + (f" ({'; '.join(skipped[:3])})" if skipped else ""),
            f"select takes of at least {MIN_TAKE_FRAMES} frames (3 s at 25 fps) where the actor faces the camera and speaks, "
            "with the production sound in their media", "NO_TAKES")
    if len(takes) > MAX_TAKES:
        raise ResolveScriptError(f"{len(takes)} takes are selected; one adaptation learns from at most {MAX_TAKES}",
                                 "select fewer, longer takes", "TOO_MANY")
    return takes, skipped, names


# ----------------------------------------------------------------------------------------------
# the name


def actor_proposal(settings: ProjectSettings, clip_names: list[str]) -> str:
    """The ``actor`` setting, else the first word every take's clip name shares (case-insensitive), else ""."""
    if settings.actor.strip():
        return settings.actor.strip()
    words = [(_WORD.findall(name) or [""])[0] for name in clip_names]
    if words and words[0] and all(w.lower() == words[0].lower() for w in words):
        return words[0]
    return ""


def bundle_name(actor: str, served: set[str]) -> str:
    """``actor`` as a bundle name (letters, digits, ``-_.``), with ``-v2``, ``-v3``… when one by that name is served."""
    base = _UNSAFE.sub("-", actor).strip("-._")[:60]
    if not base:
        raise ResolveScriptError(f"{actor!r} cannot name a model", "use letters and digits, e.g. the actor's name", "BAD_NAME")
    name, version = base, 1
    while name in served:
        version += 1
        name = f"{base}-v{version}"
    return name


def _named(err: EdidubError, takes: list[Take]) -> EdidubError:
    """The daemon's refusal, with ``clips[i]`` (the request's words) as the take's clip name (the editor's)."""
    m = re.match(r"clips\[(\d+)\]", err.message)
    if m and int(m.group(1)) < len(takes):
        err.message = f"take {takes[int(m.group(1))].clip!r}" + err.message[m.end():]
    return err


def _submit(client: Client, actor: str, takes: list[Take], settings: ProjectSettings) -> tuple[str, str]:
    """Queue the adaptation under a free name; ``(job_id, bundle name)``."""
    if settings.adapt_steps is None and settings.adapt_minutes is None:
        raise ResolveScriptError("the project gives the adaptation no budget",
                                 f"set \"adapt_minutes\" (or \"adapt_steps\") in {settings_path()}", "NO_BUDGET")
    served = {m.name for m in client.models()}
    for _ in range(20):
        name = bundle_name(actor, served)
        try:
            job_id, _path = client.adapt(name, [t.to_wire() for t in takes], base=settings.adapt_base or None,
                                         steps=settings.adapt_steps, minutes=settings.adapt_minutes,
                                         validate_every=settings.adapt_validate_every, priority="interactive")
            return job_id, name
        except EdidubError as err:
            if err.code != "OUTPUT_EXISTS":  # being made by another adapt job, or a folder left there: the next version
                raise _named(err, takes) from None
            served.add(name)
    raise ResolveScriptError(f"no free model name for {actor!r}", "choose another actor name", "BAD_NAME")


# ----------------------------------------------------------------------------------------------
# the menu entry


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _status_line(name: str):
    def describe(views: list[JobView]) -> str:
        view = views[0]
        if view.state is JobState.QUEUED:
            return f"{name}: waiting for the daemon"
        if view.stage == "adapt" and view.frames_total:
            left = f", about {_minutes(view.eta_s)} left" if view.eta_s else ""
            return f"{name}: training step {view.frames_done}/{view.frames_total}{left}"
        return f"{name}: reading the takes (faces, speech)…" if not view.state.terminal else f"{name}: {view.state.value}"

    return describe


def _done_text(report: AdaptReport, project: str) -> str:
    b = report.bundle
    frames = sum(t.end_frame - t.start_frame for t in report.takes)
    lines = [
        f"Model {report.name!r} is ready: {len(report.takes)} take(s), {frames} frames, {b.get('steps', 0)} training steps "
        f"in {_minutes(float(b.get('seconds') or 0))}" + (f" ({b['stopped']})" if b.get("stopped") else "") + ".",
        f"Lip sync on the held-back frames, dubbed with their own speech: {float(b.get('before_db', 0)):.2f} dB before, "
        f"{float(b.get('after_db', 0)):.2f} dB after.",
        f"Dub Shot and Dub Timeline in project {project!r} now dub with it (\"model\": {report.name!r} in {settings_path()}; "
        "set it to \"\" for the daemon's default).",
    ]
    lines.extend(f"left out {s}" for s in report.skipped)
    return "\n".join(lines)


def adapt_to_actor(resolve: Any, *, fusion: Any = None, bmd: Any = None, progress: ConsoleProgress | None = None) -> AdaptReport | None:
    """Workspace ▸ Scripts ▸ EdiDub Adapt to Actor.  Shows every problem as a message and returns None."""
    progress = progress or make_progress(fusion, bmd)
    title = "Adapt to Actor"
    try:
        ctx = _context(resolve)
        items, found = _take_items(ctx)
        takes, skipped, clip_names = _takes(ctx, items)
        proposal = actor_proposal(ctx.settings, clip_names)
        actor = progress.ask(title, f"Actor whose model to make from {found} ({len(takes)} take(s))", proposal)
        if actor is None:
            progress.message(title, "cancelled: nothing was sent")
            return None
        if not actor.strip():
            names = sorted({(_WORD.findall(name) or ["?"])[0] for name in clip_names})
            raise ResolveScriptError(f"the takes' clip names do not name one actor ({', '.join(names[:4])}…)",
                                     f"name the actor's clips alike (ANNA_sc12_t3, ANNA_sc14_t1…), or set \"actor\" in {settings_path()}",
                                     "NO_ACTOR")
        save_settings(ctx.project_name, ctx.settings)  # remembered from the first run on: the editor can edit the file
        with connect(ctx) as client:
            if "adapt" not in client.hello().capabilities:
                raise ResolveScriptError("this EdiDub daemon cannot adapt models", "update edidub-engine and restart `edidub serve`",
                                         "UNSUPPORTED")
            job_id, name = _submit(client, actor.strip(), takes, ctx.settings)
            report = AdaptReport(name, job_id, takes, skipped)
            views = watch(client, [job_id], progress, f"{title}: {name}", describe=_status_line(name),
                          label=lambda view: f"adapting {name!r}")
            if views is None:
                report.cancelled = True
                still = ctx.settings.model or "the daemon's default model"
                progress.message(title, f"cancelled (job {job_id}): no model was kept; the project still dubs with {still}")
                return report
            report.bundle = client.adapted(job_id)
        fresh = load_settings(ctx.project_name)  # the file as it is now: the editor may have changed it meanwhile
        fresh.model = report.bundle.get("name") or name
        save_settings(ctx.project_name, fresh)
        progress.message(title, _done_text(report, ctx.project_name))
        return report
    except ResolveScriptError as err:
        progress.message(title, err.text())
    except EdidubError as err:
        progress.message(title, err.message + (f"\n\nWhat to do: {err.hint}" if err.hint else ""))
    return None
