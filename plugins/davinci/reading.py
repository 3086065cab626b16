"""Reading the shot from Resolve: the open project and timeline, its rate, the clip and the dub speech under it.

Record frames are Resolve's absolute ones (``TimelineItem.GetStart()`` includes the timeline
start, 86400 for 01:00:00:00 at 24 fps, 107892 for 01:00:00;00 at 29.97 DF).  Source frames are
file-relative (``GetLeftOffset()``).  The shot becomes a one-clip OTIO timeline
(``global_start_time`` = ``GetStartFrame()``, a gap up to the clip) with the dub audio clips
under it on one audio track (:func:`shot_timeline`), which the flows convert with
:func:`otio_adapters.shots_from_timeline` and ``handles=None``: the dubbed clip covers the whole
visible clip, so it lands at the original's record frames with its duration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import EdidubError
from edidub_engine.timebase import exact_video_rate
from edidub_engine.timebase import timecode_to_frame as _timecode_to_frame

from .errors import ResolveScriptError
from .settings import ProjectSettings, load_settings, settings_path

__all__ = ["TRACK_NAME", "parse_timeline_rate", "shot_timeline", "timecode_to_frame"]

TRACK_NAME = "EdiDub"  # the video track the dubs are placed on; a clip there is never the shot


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


def face_tracks(ctx: _Context) -> list[tuple[str, int]]:
    """The project's two-shot rule (``face_tracks``: face → 1-based audio track), checked against the timeline; []
    when it has none (one face, the dub track)."""
    from edidub_engine.shot import face_selector_parts

    count = int(ctx.timeline.GetTrackCount("audio") or 0)
    out = []
    for face, track in (ctx.settings.face_tracks or {}).items():
        try:
            face_selector_parts(str(face), "face")
        except Exception:  # noqa: BLE001 - said to the editor below, with where the setting lives
            raise ResolveScriptError(f"\"face_tracks\" names {face!r}, which is not a face",
                                     f"use a face counted left to right from 0, \"largest\" or \"x,y\" in {settings_path()}", "SETTINGS") from None
        if isinstance(track, bool) or not isinstance(track, int) or not 1 <= track <= count:
            raise ResolveScriptError(f"\"face_tracks\" gives face {face} the audio track A{track}, which the timeline does not have",
                                     f"name an audio track from A1 to A{count} in {settings_path()}", "NO_DUB")
        out.append((str(face), track))
    return out


def shot_timeline(ctx: _Context, item: Any, shot_id: str, dub_track: int | list[int]) -> otio.schema.Timeline:
    """The one clip read from Resolve, at its record frames, with the dub speech under it (several audio tracks, in
    order, for a two-shot whose faces each have their track)."""
    start, duration = int(item.GetStart()), int(item.GetDuration())
    video = otio.schema.Track(name="V", kind=otio.schema.TrackKind.Video)
    if start > ctx.start_frame:
        video.append(otio.schema.Gap(duration=_rt(start - ctx.start_frame, ctx.rate)))
    video.append(_video_clip(ctx, item, shot_id))
    timeline = otio.schema.Timeline(name=ctx.timeline.GetName() or "Timeline", global_start_time=_rt(ctx.start_frame, ctx.rate))
    timeline.tracks.append(video)
    for track in dub_track if isinstance(dub_track, list) else [dub_track]:
        timeline.tracks.append(_audio_track(ctx, track, start, start + duration))
    return timeline
