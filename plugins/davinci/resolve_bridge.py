"""What the Resolve scripts do: read the shot, submit it, show progress, place the result.

The two menu scripts (``scripts/EdiDub Dub Shot.py``, ``scripts/EdiDub Dub Timeline.py``) are
thin: they find this module through the bootstrap ``edidub install resolve`` writes into them
and call :func:`dub_shot` / :func:`dub_timeline` with the live ``resolve`` handle.

Only documented Resolve scripting calls are used (the README of Jul 2026, see
``../shared/notes/nle-integration.md``; ``tests/davinci/resolve_api.py`` keeps the list and a
test checks every call against it).  Optional calls are probed with ``"X" in dir(obj)``, never
``hasattr`` (always true on live Resolve objects).

Imports: the standard library, OpenTimelineIO, ``otio_adapters`` (the one conversion from clip
ranges to ShotRequests) and ``edidub_engine.client`` (pyzmq + msgpack) — never torch, numpy or
PyAV: this runs inside Resolve's Python.

Frames
    Record frames are Resolve's absolute ones (``TimelineItem.GetStart()`` includes the timeline
    start, 86400 for 01:00:00:00 at 24 fps, 107892 for 01:00:00;00 at 29.97 DF).  Source
    frames are file-relative (``GetLeftOffset()``).  The shot read from Resolve becomes a
    one-clip OTIO timeline (``global_start_time`` = ``GetStartFrame()``, a gap up to the clip)
    with the dub audio clips under it on one audio track, and goes through
    :func:`otio_adapters.shots_from_timeline` with ``handles=None``: the dubbed clip covers the
    whole visible clip, so it lands at the original's record frames with its duration.

Settings (remembered per project, see :class:`ProjectSettings`)
    A JSON file keyed by project name in the user config folder (:func:`settings_path`):
    ``$XDG_CONFIG_HOME/edidub/resolve-projects.json`` (Linux, default ``~/.config``),
    ``~/Library/Application Support/EdiDub/resolve-projects.json`` (macOS),
    ``%APPDATA%\\EdiDub\\resolve-projects.json`` (Windows).  Resolve's own project settings
    accept only Resolve's keys, so they cannot hold ours.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any, Callable

import opentimelineio as otio

from edidub_engine.client import Client, DaemonDownError, JobState
from edidub_engine.errors import EdidubError
from edidub_engine.shot import DubOptions, OutputSpec, RenderedClip
from edidub_engine.timebase import exact_video_rate
from edidub_engine.timebase import timecode_to_frame as _timecode_to_frame
from otio_adapters import REASONS, ShotList, shots_from_timeline

__all__ = [
    "QUALITY_PRESETS",
    "DubReport",
    "ProjectSettings",
    "ResolveScriptError",
    "dub_shot",
    "dub_timeline",
    "load_settings",
    "parse_timeline_rate",
    "save_settings",
    "settings_path",
]

BIN_NAME = "EdiDub"
TRACK_NAME = "EdiDub"
MARKER_COLOR = "Purple"
REVIEW_MARKER_COLOR = "Red"  # the shot's QC verdict asks a person to look before it is cut in
QUALITY_PRESETS: dict[str, dict[str, Any]] = {
    "draft": {"steps": 10, "inversion_steps": 10},  # a quick look at timing
    "standard": {},  # the model bundle's own defaults
    "final": {"steps": 50, "inversion_steps": 50},  # the paper's settings
}
SERVE_HINT = "start it in a terminal with `edidub serve --media-root <folder that holds your media and renders>`"


class ResolveScriptError(Exception):
    """A message for the editor (what happened, what to do); the scripts show it and stop."""

    def __init__(self, message: str, hint: str | None = None, code: str = "RESOLVE"):
        super().__init__(message)
        self.message, self.hint, self.code = message, hint, code

    def text(self) -> str:
        return self.message + (f"\n\nWhat to do: {self.hint}" if self.hint else "")


# ----------------------------------------------------------------------------------------------
# settings


@dataclass
class ProjectSettings:
    """What the editor chooses once per project.

    ``dub_audio_track``: 1-based audio track holding the dub speech (None: A2 when the timeline
    has two or more audio tracks, else A1).  ``picture_track``: 1-based video track of the
    picture (None: the track of the selected clip).  ``output_folder``: where renders go (""
    = an ``EdiDub`` folder beside the source media, created when missing; it must lie under one
    of the daemon's ``--media-root`` folders).  ``quality``: a key of :data:`QUALITY_PRESETS`.
    ``daemon``: request endpoint ("" = ``$EDIDUB_DAEMON``, else the daemon's connection file, else tcp://127.0.0.1:47610).
    """

    dub_audio_track: int | None = None
    picture_track: int | None = None
    output_folder: str = ""
    quality: str = "standard"
    daemon: str = ""
    daemon_timeout_s: float = 5.0
    language: str = "DUB"  # the dub's language code, for the batch's dubbed-timeline track name

    @classmethod
    def from_dict(cls, data: Any) -> "ProjectSettings":
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in (data or {}).items() if k in known} if isinstance(data, dict) else {}
        out = cls(**kept)
        if out.quality not in QUALITY_PRESETS:
            out.quality = "standard"
        return out


def settings_path() -> str:
    """The per-user JSON file that remembers each project's settings."""
    if sys.platform == "darwin":
        base = os.path.join(os.path.expanduser("~"), "Library", "Application Support", "EdiDub")
    elif os.name == "nt":
        base = os.path.join(os.environ.get("APPDATA") or os.path.expanduser("~"), "EdiDub")
    else:
        xdg = os.environ.get("XDG_CONFIG_HOME", "")
        base = os.path.join(xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".config"), "edidub")
    return os.path.join(base, "resolve-projects.json")


def _read_all() -> dict[str, Any]:
    try:
        with open(settings_path(), encoding="utf-8") as fh:
            data = json.load(fh)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def load_settings(project_name: str) -> ProjectSettings:
    return ProjectSettings.from_dict(_read_all().get(project_name))


def save_settings(project_name: str, settings: ProjectSettings) -> None:
    data = _read_all()
    data[project_name] = asdict(settings)
    path = settings_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# rates and timecode


def _is_on(value: Any) -> bool:
    """A Resolve boolean setting: "1"/"0" as text (sometimes a number or a bool)."""
    return str(value).strip().lower() in ("1", "true", "on")


def parse_timeline_rate(text: Any) -> tuple[Fraction, bool]:
    """``"24"`` → (24, False); ``"23.976"`` → (24000/1001, False); ``"29.97 DF"`` → (30000/1001, True).

    Resolve states drop frame in ``timelineDropFrameTimecode``, not in this text; the ``DF`` suffix is still read.
    """
    raw = str(text or "").strip()
    m = re.match(r"^([0-9]+(?:\.[0-9]+)?)\s*(DF|NDF)?$", raw, re.IGNORECASE)
    if not m:
        raise ResolveScriptError(f"Resolve reports the timeline frame rate as {raw!r}, which EdiDub does not understand",
                                 "check Project Settings ▸ Master Settings ▸ Timeline frame rate")
    return _exact_rate(float(m.group(1))), (m.group(2) or "").upper() == "DF"


def _exact_rate(value: float) -> Fraction:
    """Resolve's float rates (``23.976``, ``29.97``) as exact ones: the engine's one rule (edidub_engine.timebase)."""
    try:
        return exact_video_rate(value, where="Resolve", video=False)
    except EdidubError as err:
        raise ResolveScriptError(err.message, "check Project Settings ▸ Master Settings ▸ Timeline frame rate") from None


def timecode_to_frame(tc: str, rate: Fraction, drop_frame: bool) -> int:
    """Frame count of a Resolve timecode; ``drop_frame`` is the timeline's setting (Resolve may still write ``:``)."""
    try:
        return _timecode_to_frame(str(tc).strip(), rate, drop_frame=drop_frame)
    except EdidubError:
        raise ResolveScriptError(f"Resolve gave the timecode {tc!r}, which EdiDub cannot read at {float(rate):g} fps") from None


# ----------------------------------------------------------------------------------------------
# progress


class ConsoleProgress:
    """Progress and messages on Resolve's Console (Workspace ▸ Console) or a terminal."""

    def __init__(self, out: Callable[[str], None] | None = None):
        self._out = out or (lambda text: print(text, flush=True))
        self._last = None

    def message(self, title: str, text: str) -> None:
        self._out(f"[EdiDub] {title}: {text}")

    def run(self, title: str, step: Callable[[], tuple[float, str, bool]], cancel: Callable[[], None], poll_s: float = 0.5) -> bool:
        """Call ``step()`` until it says done; returns False when cancelled (never, on the console)."""
        while True:
            fraction, text, done = step()
            line = f"[EdiDub] {title}: {int(fraction * 100):3d}% {text}"
            if line != self._last:
                self._out(line)
                self._last = line
            if done:
                return True
            time.sleep(poll_s)


class UIProgress(ConsoleProgress):
    """A small UIManager window: a status line, a text progress bar and Cancel."""

    def __init__(self, fusion: Any, bmd: Any):
        super().__init__()
        self.ui = fusion.UIManager
        self.disp = bmd.UIDispatcher(self.ui)

    def message(self, title: str, text: str) -> None:
        super().message(title, text)
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "EdiDubMessage", "WindowTitle": f"EdiDub: {title}", "Geometry": [200, 200, 520, 180]},
            ui.VGroup([ui.Label({"ID": "Text", "Text": text, "WordWrap": True}), ui.Button({"ID": "OK", "Text": "OK"})]),
        )
        disp.On.OK.Clicked = lambda ev: disp.ExitLoop()
        disp.On.EdiDubMessage.Close = lambda ev: disp.ExitLoop()
        win.Show()
        disp.RunLoop()
        win.Hide()

    def run(self, title, step, cancel, poll_s: float = 0.5) -> bool:
        ui, disp = self.ui, self.disp
        win = disp.AddWindow(
            {"ID": "EdiDubProgress", "WindowTitle": f"EdiDub: {title}", "Geometry": [200, 200, 460, 130]},
            ui.VGroup([
                ui.Label({"ID": "Status", "Text": "Sending to the EdiDub daemon…"}),
                ui.Label({"ID": "Bar", "Text": _bar(0.0)}),
                ui.HGroup([ui.HGap(0, 1), ui.Button({"ID": "Cancel", "Text": "Cancel"})]),
            ]),
        )
        timer = ui.Timer({"ID": "EdiDubTick", "Interval": int(poll_s * 1000)})
        state = {"done": False, "cancelled": False}

        def tick(ev):
            fraction, text, done = step()
            items = win.GetItems()
            items["Status"].Text = text
            items["Bar"].Text = _bar(fraction)
            if done:
                state["done"] = True
                disp.ExitLoop()

        def stop(ev):
            state["cancelled"] = True
            cancel()
            disp.ExitLoop()

        disp.On.EdiDubTick.Timeout = tick
        disp.On.Cancel.Clicked = stop
        disp.On.EdiDubProgress.Close = stop
        timer.Start()
        win.Show()
        disp.RunLoop()
        timer.Stop()
        win.Hide()
        return not state["cancelled"]


def _bar(fraction: float, width: int = 40) -> str:
    n = max(0, min(width, int(round(fraction * width))))
    return "█" * n + "░" * (width - n) + f" {int(fraction * 100)}%"


def make_progress(fusion: Any = None, bmd: Any = None) -> ConsoleProgress:
    """The UIManager window where Resolve offers one (``fusion`` and ``bmd`` from the Scripts menu), else the console."""
    if fusion is not None and bmd is not None:
        try:
            if "UIManager" in dir(fusion) or getattr(fusion, "UIManager", None) is not None:
                return UIProgress(fusion, bmd)
        except Exception:
            pass
    return ConsoleProgress()


# ----------------------------------------------------------------------------------------------
# reading Resolve


@dataclass
class _Context:
    resolve: Any
    project: Any
    timeline: Any
    media_pool: Any
    project_name: str
    rate: Fraction
    drop_frame: bool
    start_frame: int
    settings: ProjectSettings


def _context(resolve: Any) -> _Context:
    if resolve is None:
        raise ResolveScriptError("this script could not reach DaVinci Resolve",
                                 "run it from Workspace ▸ Scripts inside Resolve (Studio), with a project open")
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise ResolveScriptError("no project is open", "open the project with the shot to dub", "NO_PROJECT")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise ResolveScriptError("no timeline is open", "open the timeline on the Edit page", "NO_TIMELINE")
    rate, df = parse_timeline_rate(timeline.GetSetting("timelineFrameRate") or project.GetSetting("timelineFrameRate"))
    # drop frame is its own documented setting ("1"/"0"), independent of the rate text
    df = df or _is_on(timeline.GetSetting("timelineDropFrameTimecode") or project.GetSetting("timelineDropFrameTimecode"))
    name = project.GetName() or "Untitled Project"
    return _Context(resolve, project, timeline, project.GetMediaPool(), name, rate, df, int(timeline.GetStartFrame()), load_settings(name))


def _track_index(item: Any) -> tuple[str, int] | None:
    try:
        kind, index = item.GetTrackTypeAndIndex()
        return str(kind), int(index)
    except Exception:
        return None


def _items(timeline: Any, kind: str, index: int) -> list[Any]:
    if not 1 <= index <= int(timeline.GetTrackCount(kind) or 0):
        return []
    return list(timeline.GetItemListInTrack(kind, index) or [])


def _find_shot_item(ctx: _Context) -> tuple[Any, int]:
    """The selected video clip, else the clip under the playhead on the picture track."""
    tl = ctx.timeline
    picture = ctx.settings.picture_track
    if "GetSelectedClips" in dir(tl):  # Resolve 21.0.4+
        selected = [i for i in (tl.GetSelectedClips() or []) if (_track_index(i) or ("", 0))[0] == "video"]
        if picture is not None and len(selected) > 1:
            selected = [i for i in selected if _track_index(i)[1] == picture] or selected
        if len(selected) > 1:
            raise ResolveScriptError(f"{len(selected)} video clips are selected", "select the one clip to dub", "MANY_SELECTED")
        if selected:
            return selected[0], _track_index(selected[0])[1]
    current = tl.GetCurrentVideoItem()
    where = _track_index(current) if current is not None else None
    if current is not None and where is not None and (picture is None or where[1] == picture) \
            and (tl.GetTrackName("video", where[1]) or "") != TRACK_NAME:
        return current, where[1]
    # the item on top may be a dub or another layer: look on the picture track under the playhead
    track = picture or 1
    tc = tl.GetCurrentTimecode()
    if tc:
        frame = timecode_to_frame(tc, ctx.rate, ctx.drop_frame)
        for item in _items(tl, "video", track):
            if int(item.GetStart()) <= frame < int(item.GetEnd()):
                return item, track
    raise ResolveScriptError(
        "no clip is selected",
        f"select the clip to dub on the timeline (or park the playhead over it on V{track}) and run Dub Shot again",
        "NO_CLIP",
    )


def _media_rate(mpi: Any, default: Fraction) -> Fraction:
    try:
        fps = float(str(mpi.GetClipProperty("FPS")).split()[0])
        return _exact_rate(fps) if fps > 0 else default
    except (TypeError, ValueError, IndexError):
        return default


def _media_frames(mpi: Any) -> int | None:
    try:
        return int(str(mpi.GetClipProperty("Frames")).strip())
    except (TypeError, ValueError):
        return None


def _speed(item: Any, rate: Fraction, mpi: Any, media_rate: Fraction) -> float:
    """Source seconds per record second (1.0 for a clip without a speed change)."""
    duration = int(item.GetDuration())
    if duration <= 0:
        return 1.0
    names = dir(item)
    # Resolve rounds a clip's source end to a whole source frame: within one frame of the record duration is
    # 100 % speed (on an 8-frame clip that frame is 12 %, which a ratio test took for a retime and refused).
    if "GetSourceStartTime" in names and "GetSourceEndTime" in names:
        try:
            src_s = abs(float(item.GetSourceEndTime()) - float(item.GetSourceStartTime()))
            record_s = float(duration / rate)
            if not src_s or abs(src_s - record_s) <= float(1 / media_rate) + 1e-6:
                return 1.0
            return src_s / record_s
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    if "GetSourceStartFrame" in names and "GetSourceEndFrame" in names:
        try:
            src = abs(float(item.GetSourceEndFrame()) - float(item.GetSourceStartFrame()))
            expected = float(duration * media_rate / rate)
            if not src or abs(src - expected) <= 1.0 + 1e-6:
                return 1.0
            return src / expected
        except (TypeError, ValueError, ZeroDivisionError):
            pass
    return 1.0


def _rt(frames, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(frames), float(rate))


def _video_clip(ctx: _Context, item: Any, shot_id: str) -> otio.schema.Clip:
    """The picture clip as OTIO: file-relative source range, the media's extent, a time warp when retimed."""
    name = item.GetName() or "clip"
    mpi = item.GetMediaPoolItem()
    if mpi is None:
        raise ResolveScriptError(f"clip {name!r} has no media file (a title, generator or compound clip?)",
                                 "EdiDub dubs camera clips; select one", "NO_MEDIA")
    path = mpi.GetClipProperty("File Path") or ""
    if not path or not os.path.isfile(path):
        raise ResolveScriptError(
            f"the media of clip {name!r} is offline" + (f": {path} is not there" if path else ""),
            "relink the clip (right-click ▸ Relink Selected Clips) or mount its drive, then run the script again",
            "OFFLINE",
        )
    media_rate = _media_rate(mpi, ctx.rate)
    frames = _media_frames(mpi)
    duration = int(item.GetDuration())
    left = int(item.GetLeftOffset())
    avail = None if not frames else otio.opentime.TimeRange(_rt(0, media_rate), _rt(frames, media_rate))
    clip = otio.schema.Clip(
        name=name,
        media_reference=otio.schema.ExternalReference(target_url=path, available_range=avail),
        source_range=otio.opentime.TimeRange(_rt(left, media_rate), _rt(Fraction(duration) * media_rate / ctx.rate, media_rate)),
        metadata={"edidub": {"shot_id": shot_id}},
    )
    speed = _speed(item, ctx.rate, mpi, media_rate)
    if abs(speed - 1.0) > 0.01:
        clip.effects.append(otio.schema.LinearTimeWarp(name="Retime", time_scalar=speed))
    return clip


def _dub_track(ctx: _Context) -> int:
    count = int(ctx.timeline.GetTrackCount("audio") or 0)
    chosen = ctx.settings.dub_audio_track or (2 if count >= 2 else 1)
    if not 1 <= chosen <= count:
        raise ResolveScriptError(f"the timeline has no audio track A{chosen} for the dub speech",
                                 f"put the dub on an audio track and set it in {settings_path()} (\"dub_audio_track\")", "NO_DUB")
    return chosen


def _audio_track(ctx: _Context, track: int, lo: int, hi: int) -> otio.schema.Track:
    """The dub clips of audio track ``track`` that overlap record frames [lo, hi), on an OTIO audio track."""
    out = otio.schema.Track(name=f"A{track}", kind=otio.schema.TrackKind.Audio)
    cursor = ctx.start_frame
    items = sorted((i for i in _items(ctx.timeline, "audio", track) if int(i.GetStart()) < hi and int(i.GetEnd()) > lo),
                   key=lambda i: int(i.GetStart()))
    for item in items:
        start, duration = int(item.GetStart()), int(item.GetDuration())
        if start < cursor:
            continue  # overlapping items cannot be on one track; keep the first
        if start > cursor:
            out.append(otio.schema.Gap(duration=_rt(start - cursor, ctx.rate)))
        mpi = item.GetMediaPoolItem()
        path = (mpi.GetClipProperty("File Path") if mpi is not None else "") or ""
        ref = otio.schema.ExternalReference(target_url=path) if path and os.path.isfile(path) else otio.schema.MissingReference()
        clip = otio.schema.Clip(
            name=item.GetName() or "dub",
            media_reference=ref,
            source_range=otio.opentime.TimeRange(_rt(int(item.GetLeftOffset()), ctx.rate), _rt(duration, ctx.rate)),
        )
        if abs(_speed(item, ctx.rate, mpi, ctx.rate) - 1.0) > 0.01:
            clip.effects.append(otio.schema.LinearTimeWarp(name="Retime", time_scalar=_speed(item, ctx.rate, mpi, ctx.rate)))
        out.append(clip)
        cursor = start + duration
    return out


def shot_timeline(ctx: _Context, item: Any, shot_id: str, dub_track: int) -> otio.schema.Timeline:
    """The one clip read from Resolve, at its record frames, with the dub speech under it."""
    start, duration = int(item.GetStart()), int(item.GetDuration())
    video = otio.schema.Track(name="V", kind=otio.schema.TrackKind.Video)
    if start > ctx.start_frame:
        video.append(otio.schema.Gap(duration=_rt(start - ctx.start_frame, ctx.rate)))
    video.append(_video_clip(ctx, item, shot_id))
    timeline = otio.schema.Timeline(name=ctx.timeline.GetName() or "Timeline", global_start_time=_rt(ctx.start_frame, ctx.rate))
    timeline.tracks.append(video)
    timeline.tracks.append(_audio_track(ctx, dub_track, start, start + duration))
    return timeline


def _output_folder(ctx: _Context, source_path: str) -> str:
    folder = ctx.settings.output_folder or os.path.join(os.path.dirname(source_path), "EdiDub")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ResolveScriptError(f"cannot create the output folder {folder} ({exc.strerror or exc})",
                                 f"choose a writable folder as \"output_folder\" in {settings_path()}", "OUTPUT") from None
    return folder


def _request_defaults(ctx: _Context, source_path: str) -> tuple[OutputSpec, DubOptions]:
    output = OutputSpec(dir=_output_folder(ctx, source_path), codec="prores_hq")
    return output, DubOptions(**QUALITY_PRESETS[ctx.settings.quality])


def _skipped_error(shots: ShotList, dub_track: int) -> ResolveScriptError:
    skip = shots.skipped[0]
    if skip.reason == "no_dub":
        return ResolveScriptError(f"there is no dub audio under clip {skip.clip!r} on audio track A{dub_track}",
                                  f"place the dub speech on A{dub_track} under the clip, or choose the dub track "
                                  f"(\"dub_audio_track\") in {settings_path()}", "NO_DUB")
    if skip.reason == "time_effect":
        return ResolveScriptError(f"clip {skip.clip!r} has a speed change; EdiDub dubs clips at their own speed",
                                  "dub the clip at 100% speed, then apply the retime to the dubbed clip", "SPEED")
    if skip.reason in ("missing_media", "dub_unusable"):
        return ResolveScriptError(f"clip {skip.clip!r}: {skip.message.split(': ', 1)[-1]}",
                                  "relink the offline media, then run the script again", "OFFLINE")
    return ResolveScriptError(f"clip {skip.clip!r} cannot be dubbed: {REASONS.get(skip.reason, skip.reason)}", None, skip.reason.upper())


# ----------------------------------------------------------------------------------------------
# the daemon


def _client(ctx: _Context) -> Client:
    client = Client(ctx.settings.daemon or None, timeout_s=ctx.settings.daemon_timeout_s, name="edidub-resolve")
    try:
        client.hello()
    except DaemonDownError as exc:
        client.close()
        raise ResolveScriptError(f"no EdiDub daemon is running ({exc.message})", SERVE_HINT, "DAEMON_DOWN") from None
    return client


def submit_batch(client: Client, exported: otio.schema.Timeline, shot_list: ShotList, *, dub_track: str, picture_track: str,
                 output: OutputSpec, options: DubOptions, language: str) -> list[str]:
    """Queue a whole timeline as one batch: the single call "Dub Timeline" makes.

    With a daemon that offers ``submit_timeline`` (issue 8) the exported timeline itself goes,
    and the daemon converts it with the same ``otio_adapters`` call; otherwise the shots
    converted here are submitted.  Either way the job ids come back in timeline order.
    """
    if "submit_timeline" in dir(client):
        batch = client.submit_timeline(
            exported, dub_track=dub_track, picture_tracks=[picture_track], language=language, output_dir=output.dir,
            codec=output.codec, options={k: v for k, v in asdict(options).items() if v is not None}, handles=None,
        )
        return list(batch.job_ids)
    return client.submit(shot_list.shots, priority="batch")


def _wait(client: Client, job_ids: list[str], progress: ConsoleProgress, title: str) -> list[RenderedClip] | None:
    """Poll the jobs' status into ``progress``; the rendered clips, or None when the editor cancelled."""
    state: dict[str, Any] = {"views": {}}

    def step():
        views = {j: client.status(j) for j in job_ids}
        state["views"] = views
        total = sum(max(v.frames_total, 1) for v in views.values())
        done_frames = sum(v.frames_total if v.state.terminal else min(v.frames_done, v.frames_total) for v in views.values())
        finished = sum(v.state.terminal for v in views.values())
        running = [v for v in views.values() if v.state is JobState.RUNNING]
        stage = running[0].stage if running else ("queued" if finished < len(views) else "done")
        text = f"{finished}/{len(views)} shot(s) done — {stage}" if len(views) > 1 else f"{stage or 'working'}"
        return done_frames / total if total else 0.0, text, finished == len(views)

    def cancel():
        for j in job_ids:
            try:
                client.cancel(j)
            except EdidubError:
                pass

    if not progress.run(title, step, cancel):
        return None
    clips = []
    for job_id in job_ids:
        view = state["views"][job_id]
        if view.state is JobState.CANCELLED:
            return None
        if view.state is JobState.FAILED:
            err = view.error
            message = getattr(err, "message", None) or "the render failed"
            hint = (getattr(err, "details", None) or {}).get("hint")
            raise ResolveScriptError(f"shot {view.shot_id!r}: {message}", hint, getattr(err, "code", "FAILED"))
        clips.append(client.result(job_id))
    return clips


# ----------------------------------------------------------------------------------------------
# placing the result


@dataclass
class Placed:
    shot_id: str
    job_id: str
    path: str
    track: int
    record_start: int
    duration: int
    ok: bool
    problem: str | None = None


@dataclass
class DubReport:
    """What a script did, for the console and for tests."""

    placed: list[Placed]
    skipped: list[str]
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return not self.cancelled and all(p.ok for p in self.placed)


def _edidub_bin(ctx: _Context) -> Any:
    mp = ctx.media_pool
    root = mp.GetRootFolder()
    for folder in root.GetSubFolderList() or []:
        if folder.GetName() == BIN_NAME:
            return folder
    folder = mp.AddSubFolder(root, BIN_NAME)
    if folder is None:
        raise ResolveScriptError(f"Resolve refused to create the {BIN_NAME!r} bin in the Media Pool")
    return folder


def _import(ctx: _Context, path: str) -> Any:
    mp = ctx.media_pool
    previous = mp.GetCurrentFolder()
    mp.SetCurrentFolder(_edidub_bin(ctx))
    try:
        items = mp.ImportMedia([path]) or []
    finally:
        if previous is not None:
            mp.SetCurrentFolder(previous)
    if not items:
        raise ResolveScriptError(f"Resolve could not import the dubbed clip {path}",
                                 "check the file exists on this machine and Resolve can decode ProRes", "IMPORT")
    return items[0]


def _free(ctx: _Context, track: int, lo: int, hi: int) -> bool:
    return all(int(i.GetEnd()) <= lo or int(i.GetStart()) >= hi for i in _items(ctx.timeline, "video", track))


def _dub_video_track(ctx: _Context, picture: int, lo: int, hi: int) -> int:
    """An EdiDub track above the picture with [lo, hi) free, else a new one (AddTrack appends on top)."""
    tl = ctx.timeline
    count = int(tl.GetTrackCount("video") or 0)
    for index in range(picture + 1, count + 1):
        if (tl.GetTrackName("video", index) or "") == TRACK_NAME and _free(ctx, index, lo, hi):
            return index
    if not tl.AddTrack("video"):
        raise ResolveScriptError("Resolve refused to add a video track for the dub")
    index = int(tl.GetTrackCount("video"))
    tl.SetTrackName("video", index, TRACK_NAME)
    return index


def _placed_item(ctx: _Context, track: int, record_start: int) -> Any:
    for item in _items(ctx.timeline, "video", track):  # re-enumerate: the returned items can be phantoms
        if int(item.GetStart()) == record_start:
            return item
    return None


def place(ctx: _Context, clip: RenderedClip, job_id: str, picture: int, record_start: int, duration: int) -> Placed:
    """Import ``clip`` into the EdiDub bin and put it on the dub track at ``record_start``; read it back."""
    mpi = _import(ctx, clip.path)
    track = _dub_video_track(ctx, picture, record_start, record_start + duration)
    frames = clip.end_frame - clip.start_frame
    info = {"mediaPoolItem": mpi, "startFrame": 0, "endFrame": frames, "recordFrame": record_start, "trackIndex": track, "mediaType": 1}
    ctx.media_pool.AppendToTimeline([info])
    item = _placed_item(ctx, track, record_start)
    if item is not None and int(item.GetDuration()) == duration + 1:
        # a build that reads endFrame as inclusive: take it out and place it again one frame shorter
        ctx.timeline.DeleteClips([item], False)
        ctx.media_pool.AppendToTimeline([dict(info, endFrame=frames - 1)])
        item = _placed_item(ctx, track, record_start)
    placed = Placed(clip.shot_id, job_id, clip.path, track, record_start, duration, False)
    if item is None:
        placed.problem = (f"Resolve did not place the dubbed clip on V{track} at frame {record_start} "
                          f"(the range may be occupied); it is in the {BIN_NAME!r} bin")
        return placed
    got = int(item.GetDuration())
    if got != duration:
        placed.problem = f"the dubbed clip on V{track} lasts {got} frames, the original {duration}"
        return placed
    placed.ok = True
    note = f"EdiDub job {job_id}; shot {clip.shot_id}; {clip.frames_edited} frame(s) edited"
    quality = (clip.qc or {}).get("quality") or {}
    review = quality.get("verdict") == "review"
    if quality:
        note += "; QC " + ("REVIEW: " + "; ".join(quality.get("reasons", [])) if review else "ok")
    color, name = (REVIEW_MARKER_COLOR, "EdiDub: review") if review else (MARKER_COLOR, "EdiDub")
    custom = f"edidub:{job_id}"
    if not ctx.timeline.AddMarker(record_start - ctx.start_frame, color, name, note, duration, custom):
        item.AddMarker(0, color, name, note, 1, custom)  # a timeline marker is already there
    return placed


def _report(progress: ConsoleProgress, report: DubReport, title: str) -> None:
    lines = []
    for p in report.placed:
        lines.append(f"{'placed' if p.ok else 'NOT placed'}: {os.path.basename(p.path)} on V{p.track} at frame "
                     f"{p.record_start} ({p.duration} frames), job {p.job_id}" + (f" — {p.problem}" if p.problem else ""))
    lines.extend(f"skipped: {s}" for s in report.skipped)
    progress.message(title, "\n".join(lines) or "nothing to do")


# ----------------------------------------------------------------------------------------------
# the two menu entries


def dub_shot(resolve: Any, *, fusion: Any = None, bmd: Any = None, progress: ConsoleProgress | None = None) -> DubReport | None:
    """Workspace ▸ Scripts ▸ EdiDub Dub Shot.  Shows every problem as a message and returns None."""
    progress = progress or make_progress(fusion, bmd)
    title = "Dub Shot"
    try:
        ctx = _context(resolve)
        item, picture = _find_shot_item(ctx)
        if (ctx.timeline.GetTrackName("video", picture) or "") == TRACK_NAME:
            raise ResolveScriptError("the selected clip is an EdiDub dub", "select the original clip underneath", "IS_DUB")
        dub_track = _dub_track(ctx)
        shot_id = f"{re.sub(r'[^A-Za-z0-9]+', '_', item.GetName() or 'clip').strip('_')[:40]}_{uuid.uuid4().hex[:8]}"
        timeline = shot_timeline(ctx, item, shot_id, dub_track)
        source_path = timeline.tracks[0][-1].media_reference.target_url
        output, options = _request_defaults(ctx, source_path)
        shots = shots_from_timeline(timeline, dub_track=0, picture_tracks=0, handles=None, output=output, options=options,
                                    check_media_exists=True)
        if not shots.shots:
            raise _skipped_error(shots, dub_track)
        save_settings(ctx.project_name, ctx.settings)  # remembered from the first run on: the editor can edit the file
        with _client(ctx) as client:
            (job_id,) = client.submit(shots.shots[0], priority="interactive")
            clips = _wait(client, [job_id], progress, title)
        if clips is None:
            progress.message(title, f"cancelled (job {job_id})")
            return DubReport([], [], cancelled=True)
        report = DubReport([place(ctx, clips[0], job_id, picture, int(item.GetStart()), int(item.GetDuration()))], [])
        _report(progress, report, title)
        return report
    except ResolveScriptError as err:
        progress.message(title, err.text())
    except EdidubError as err:
        progress.message(title, err.message + (f"\n\nWhat to do: {err.hint}" if err.hint else ""))
    return None


def dub_timeline(resolve: Any, *, fusion: Any = None, bmd: Any = None, progress: ConsoleProgress | None = None) -> DubReport | None:
    """Workspace ▸ Scripts ▸ EdiDub Dub Timeline: export as OTIO, dub every shot as a batch, place each."""
    progress = progress or make_progress(fusion, bmd)
    title = "Dub Timeline"
    try:
        ctx = _context(resolve)
        dub_track = _dub_track(ctx)
        picture = ctx.settings.picture_track or 1
        with tempfile.TemporaryDirectory(prefix="edidub-resolve-") as tmp:
            path = os.path.join(tmp, "timeline.otio")
            if not ctx.timeline.Export(path, resolve.EXPORT_OTIO, resolve.EXPORT_NONE) or not os.path.isfile(path):
                raise ResolveScriptError("Resolve could not export the timeline as OpenTimelineIO",
                                         "Dub Timeline needs Resolve 18.5 or later", "EXPORT")
            exported = otio.adapters.read_from_file(path)
        if not isinstance(exported, otio.schema.Timeline):
            raise ResolveScriptError("Resolve's OTIO export holds no timeline")
        first = _items(ctx.timeline, "video", picture)
        source = (first[0].GetMediaPoolItem().GetClipProperty("File Path") if first and first[0].GetMediaPoolItem() else "") or ""
        output, options = _request_defaults(ctx, source or tempfile.gettempdir())
        shots = shots_from_timeline(exported, dub_track=f"A{dub_track}", picture_tracks=f"V{picture}", handles=None,
                                    output=output, options=options, check_media_exists=True)
        skipped = [f"{s.clip!r}: {s.message.split(': ', 1)[-1]}" for s in shots.skipped]
        if not shots.shots:
            raise ResolveScriptError(f"no clip on V{picture} has dub audio under it on A{dub_track}"
                                     + (f" ({len(skipped)} skipped: {'; '.join(skipped[:3])})" if skipped else ""),
                                     f"put the dub speech on A{dub_track}, or choose the tracks in {settings_path()}", "NO_DUB")
        save_settings(ctx.project_name, ctx.settings)
        with _client(ctx) as client:
            job_ids = submit_batch(client, exported, shots, dub_track=f"A{dub_track}", picture_track=f"V{picture}",
                                   output=output, options=options, language=ctx.settings.language)
            clips = _wait(client, job_ids, progress, title)
        if clips is None:
            progress.message(title, "cancelled")
            return DubReport([], skipped, cancelled=True)
        placed = []
        for clip, job_id in zip(clips, job_ids):
            rec = clip.record
            start, end = int(rec["start_frame"]), int(rec["end_frame"])
            placed.append(place(ctx, clip, job_id, int(rec["track_index"]) + 1, start, end - start))
        report = DubReport(placed, skipped)
        _report(progress, report, title)
        return report
    except ResolveScriptError as err:
        progress.message(title, err.text())
    except EdidubError as err:
        progress.message(title, err.message + (f"\n\nWhat to do: {err.hint}" if err.hint else ""))
    return None
