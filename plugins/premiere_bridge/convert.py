"""The panel's "dub these clips" message → an OTIO timeline → ShotRequests; its "adapt to these takes" message → takes.

The panel sends what the Premiere API gives: tick times (``TickTime.ticks``), the sequence
timebase and zero point, media paths.  Here ticks become frames at exact rational rates
(:mod:`.timing`), the selected clips and the dub audio clips are laid out on an OTIO timeline
exactly where they sit in the sequence, and :func:`otio_adapters.shots_from_timeline` — the
project's one conversion from clip ranges to shots — turns them into :class:`ShotRequest` s.

Panel message (``op: "dub"``)::

    {"request_id": "r1",
     "sequence": {"name": "cut v3", "timebase": "10594584000", "zero_point": "0"},
     "dub_track": {"index": 1, "name": "A2", "clips": [{"name", "path", "start", "end", "in"}]},
     "shots": [{"item": "V1/3", "name", "path", "track_index": 0, "start", "end", "in", "out"}],
     "handles": 12}

``start``/``end``: the track item's sequence time (``getStartTime``/``getEndTime``, sequence
start = 0, zero point excluded); ``in``/``out``: its source in/out (``getInPoint``/``getOutPoint``),
counted from the media's first frame.  Track indices are 0-based (V1 = 0).

Panel message (``op: "adapt"``): the selected video clips as the actor's takes, in the same shape
as ``shots`` above, and the new model's name (:func:`plan_adapt`)::

    {"request_id": "a1", "name": "ANNA", "clips": [{"item", "name", "path", "track_index", "start", "end", "in", "out"}],
     "steps"?: 2000, "minutes"?: 20, "validate_every"?: 100}

Each take is the source frames ``[in, out)`` of its media at the media's own rate: what the
sequence shows of it, whatever its speed; the daemon learns from the picture and the sound in
that file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import MIN_ADAPT_TAKE_FRAMES, DubOptions, OutputSpec, ShotRequest, face_selector_parts
from otio_adapters import DEFAULT_HANDLE_FRAMES, shots_from_timeline
from otio_adapters._time import round_frame

from .timing import parse_ticks, rate_from_timebase, ticks_to_frames

__all__ = ["AdaptPlan", "DubPlan", "MediaInfo", "PlannedShot", "plan_adapt", "plan_dub", "probe_media"]

MAX_SHOTS = 500
MAX_TAKES = 100  # adapt_request.clips
MIN_TAKE_FRAMES = MIN_ADAPT_TAKE_FRAMES  # the engine's (edidub_engine.shot): 50 to train on, 25 held back


@dataclass(frozen=True)
class MediaInfo:
    rate: Fraction
    frame_count: int | None = None


@dataclass(frozen=True)
class PlannedShot:
    request: ShotRequest
    item: str  # the panel's id for the track item
    name: str
    track_index: int  # video track of the source clip (0-based)
    place_ticks: str  # sequence time (zero point excluded) where the dubbed clip starts
    record_start_frame: int  # absolute (zero point included)
    record_end_frame: int


@dataclass
class DubPlan:
    request_id: str
    sequence: str
    rate: Fraction
    timebase: int
    zero_point_frames: int
    dub_track_index: int
    shots: list[PlannedShot] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def probe_media(path: str) -> MediaInfo:
    """Rate and length of a media file (PyAV, imported only when the panel sends no media rate)."""
    from edidub_engine.media import probe_video

    info = probe_video(path)
    return MediaInfo(Fraction(info.rate), info.frame_count)


def _map(data: Any, key: str, where: str) -> dict:
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where}: {key} must be a map")
    return value


def _text(data: dict, key: str, where: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > 4096 or "\x00" in value:
        raise InvalidArgumentError(f"{where}: {key} must be a non-empty string")
    return value


def _index(data: dict, key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1000:
        raise InvalidArgumentError(f"{where}: {key} must be a track index from 0 (V1/A1 = 0)")
    return value


def _slug(text: str, limit: int = 24) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:limit] or "x"


def plan_dub(
    message: dict[str, Any],
    *,
    output: OutputSpec | None = None,
    options: DubOptions | None = None,
    media_info: Callable[[str], MediaInfo] = probe_media,
) -> DubPlan:
    """Validate the panel's ``dub`` message and turn it into shots (raises InvalidArgumentError)."""
    request_id = _text(message, "request_id", "dub request")
    if len(request_id) > 64:
        raise InvalidArgumentError("dub request: request_id is longer than 64 characters")
    where = f"dub request {request_id!r}"
    seq = _map(message, "sequence", where)
    timebase = parse_ticks(seq.get("timebase"), where=f"{where} sequence timebase")
    rate = rate_from_timebase(timebase, where=f"{where} sequence")
    zero = parse_ticks(seq.get("zero_point", "0"), where=f"{where} sequence zero_point")
    zero_frames = round_frame(Fraction(zero, timebase))
    seq_name = str(seq.get("name") or "sequence")[:200]

    dub = _map(message, "dub_track", where)
    dub_index = _index(dub, "index", f"{where} dub_track")
    dub_clips = dub.get("clips")
    if not isinstance(dub_clips, list):
        raise InvalidArgumentError(f"{where}: dub_track.clips must be a list")
    shots = message.get("shots")
    if not isinstance(shots, list) or not shots:
        raise InvalidArgumentError(f"{where}: no clips selected", hint="select the shots to dub in the timeline (video clips)")
    if len(shots) > MAX_SHOTS:
        raise InvalidArgumentError(f"{where}: {len(shots)} shots at once; at most {MAX_SHOTS}")
    handles = message.get("handles", DEFAULT_HANDLE_FRAMES)
    if handles is not None and (isinstance(handles, bool) or not isinstance(handles, int) or not 0 <= handles <= 10_000):
        raise InvalidArgumentError(f"{where}: handles must be a whole number of frames or null")
    if isinstance(message.get("options"), dict):
        options = DubOptions.from_dict({**(options or DubOptions()).__dict__, **message["options"]}, f"{where} options")

    plan = DubPlan(request_id, seq_name, rate, timebase, zero_frames, dub_index)
    media_cache: dict[str, MediaInfo] = {}

    def media(path: str, what: str) -> MediaInfo:
        if path not in media_cache:
            try:
                media_cache[path] = media_info(path)
            except Exception as exc:  # a file the bridge cannot open: the daemon would refuse it too
                raise InvalidArgumentError(f"{what}: cannot read media {path} ({exc})", hint="check that the media is online") from None
        return media_cache[path]

    tl = otio.schema.Timeline(name=seq_name, global_start_time=otio.opentime.RationalTime(zero_frames, float(rate)))
    by_track: dict[int, list[tuple[Fraction, Fraction, otio.schema.Clip]]] = {}
    items: dict[str, dict[str, Any]] = {}
    for k, shot in enumerate(shots):
        w = f"{where} shot {k}"
        if not isinstance(shot, dict):
            raise InvalidArgumentError(f"{w}: must be a map")
        item = str(shot.get("item") or k)[:200]
        name = str(shot.get("name") or Path(_text(shot, "path", w)).name)[:200]
        path = _text(shot, "path", w)
        track = _index(shot, "track_index", w)
        start, end = (parse_ticks(shot.get(key), where=f"{w} {key}") for key in ("start", "end"))
        src_in, src_out = (parse_ticks(shot.get(key), where=f"{w} {key}") for key in ("in", "out"))
        if end <= start:
            raise InvalidArgumentError(f"{w} ({name}): end {end} is not after start {start}")
        info = media(path, f"{w} ({name})")
        a, b = ticks_to_frames(start, rate), ticks_to_frames(end, rate)
        if a.denominator != 1 or b.denominator != 1:
            plan.warnings.append(f"{name}: starts or ends between frames of the {float(rate):.3f} fps sequence; rounded")
        a, b = Fraction(round_frame(a)), Fraction(round_frame(b))
        src_a = ticks_to_frames(src_in, info.rate)
        src_len = ticks_to_frames(src_out - src_in, info.rate)
        rec_len_media = (b - a) * info.rate / rate
        shot_id = f"V{track + 1}_{round_frame(a) + zero_frames}_{_slug(request_id, 16)}"
        clip = otio.schema.Clip(
            name=name,
            media_reference=otio.schema.ExternalReference(
                target_url=path,
                available_range=None if info.frame_count is None else otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, float(info.rate)), otio.opentime.RationalTime(info.frame_count, float(info.rate))
                ),
            ),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(float(src_a), float(info.rate)), otio.opentime.RationalTime(float(rec_len_media), float(info.rate))
            ),
            metadata={"edidub": {"shot_id": shot_id, "origin_record": {"premiere_item": item, "sequence_zero_point_ticks": str(zero)}}},
        )
        if abs(src_len - rec_len_media) > Fraction(1, 2):  # speed change: frames would not match the speech
            clip.effects.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=float(src_len / rec_len_media)))
        by_track.setdefault(track, []).append((a, b, clip))
        items[shot_id] = {"item": item, "name": name, "track": track}

    for track in range(max(by_track) + 1):
        otio_track = otio.schema.Track(name=f"V{track + 1}", kind=otio.schema.TrackKind.Video)
        cursor = Fraction(0)
        for a, b, clip in sorted(by_track.get(track, []), key=lambda c: c[0]):
            if a < cursor:
                raise InvalidArgumentError(f"{where}: selected clips overlap on V{track + 1} at frame {a}")
            if a > cursor:
                otio_track.append(otio.schema.Gap(duration=otio.opentime.RationalTime(float(a - cursor), float(rate))))
            otio_track.append(clip)
            cursor = b
        tl.tracks.append(otio_track)

    # the dub track, or a two-shot's track per face (face_tracks: [{face, index, name, clips}], the dub track's shape)
    faces = message.get("face_tracks")
    if faces is not None and (not isinstance(faces, list) or not 1 <= len(faces) <= 16):
        raise InvalidArgumentError(f"{where}: face_tracks must list 1 to 16 faces with their dub tracks")
    for k, track in enumerate(faces or [dub]):
        w = f"{where} face_tracks[{k}]" if faces else where
        if not isinstance(track, dict) or not isinstance(track.get("clips"), list):
            raise InvalidArgumentError(f"{w}: a dub track with its clips")
        if faces:
            face_selector_parts(track.get("face"), f"{w} face")
        tl.tracks.append(_audio_track(track, rate, w))
    shot_list = shots_from_timeline(
        tl, dub_track=None if faces else 0, picture_tracks=sorted(by_track), handles=handles,
        line_tracks=[(str(track["face"]), k) for k, track in enumerate(faces)] if faces else None,
        output=output or OutputSpec(), options=options or DubOptions(),
    )
    plan.warnings.extend(shot_list.warnings)
    for s in shot_list.skipped:
        d = s.to_dict()
        d["message"] = d["message"].replace(f"track 'V{s.track_index + 1}'", f"V{s.track_index + 1}")
        plan.skipped.append(d)
    for request in shot_list.shots:
        meta = items[request.shot_id]
        rec_a, rec_b = int(request.record["start_frame"]), int(request.record["end_frame"])
        record = dict(request.record, nle="premiere", sequence=seq_name, timebase=str(timebase),
                      place_ticks=str((rec_a - zero_frames) * timebase), video_track_index=meta["track"] + 1,
                      audio_track_index=dub_index)
        plan.shots.append(PlannedShot(
            request=replace(request, record=record), item=meta["item"], name=meta["name"], track_index=meta["track"],
            place_ticks=str((rec_a - zero_frames) * timebase), record_start_frame=rec_a, record_end_frame=rec_b,
        ))
    return plan


@dataclass
class AdaptPlan:
    request_id: str
    name: str
    takes: list[dict[str, Any]] = field(default_factory=list)  # {item, name, path, start_frame, end_frame}
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {item, clip, message}
    steps: int | None = None
    minutes: float | None = None
    validate_every: int | None = None

    def clips(self) -> list[dict[str, Any]]:
        """The takes as ``adapt_request.clips``."""
        return [{"path": t["path"], "start_frame": t["start_frame"], "end_frame": t["end_frame"]} for t in self.takes]


def _budget(message: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value <= 0:
        raise InvalidArgumentError(f"{where}: {key} must be a positive {'number' if kind is float else 'whole number'}")
    return kind(value)


def plan_adapt(message: dict[str, Any], *, media_info: Callable[[str], MediaInfo] = probe_media) -> AdaptPlan:
    """Validate the panel's ``adapt`` message: each selected clip becomes the source frames it shows of its media.

    Clips shorter than :data:`MIN_TAKE_FRAMES` are listed in ``skipped``; a take cut in twice is sent once.  Raises
    InvalidArgumentError when nothing is left, with what to do.
    """
    request_id = _text(message, "request_id", "adapt request")
    if len(request_id) > 64:
        raise InvalidArgumentError("adapt request: request_id is longer than 64 characters")
    where = f"adapt request {request_id!r}"
    name = message.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgumentError(f"{where}: name the actor", hint="type the actor's name (it names the new model), e.g. ANNA")
    clips = message.get("clips")
    if not isinstance(clips, list) or not clips:
        raise InvalidArgumentError(f"{where}: no clips selected", hint="select the actor's takes in the timeline (video clips)")
    plan = AdaptPlan(request_id, name.strip(), steps=_budget(message, "steps", int, where), minutes=_budget(message, "minutes", float, where),
                     validate_every=_budget(message, "validate_every", int, where))
    seen: set[tuple[str, int, int]] = set()
    for k, clip in enumerate(clips[:1000]):
        w = f"{where} clip {k}"
        if not isinstance(clip, dict):
            raise InvalidArgumentError(f"{w}: must be a map")
        path = _text(clip, "path", w)
        item = str(clip.get("item") or k)[:200]
        label = str(clip.get("name") or Path(path).name)[:200]
        src_in, src_out = (parse_ticks(clip.get(key), where=f"{w} {key}") for key in ("in", "out"))
        try:
            info = media_info(path)
        except Exception as exc:  # a file the bridge cannot open: the daemon could not read it either
            raise InvalidArgumentError(f"{w} ({label}): cannot read media {path} ({exc})", hint="check that the media is online") from None
        start, end = round_frame(ticks_to_frames(src_in, info.rate)), round_frame(ticks_to_frames(src_out, info.rate))
        if info.frame_count is not None:
            end = min(end, info.frame_count)
        if end - start < MIN_TAKE_FRAMES:
            plan.skipped.append({"item": item, "clip": label,
                                 "message": f"{max(0, end - start)} frames, fewer than the {MIN_TAKE_FRAMES} an adaptation needs"})
        elif (path, start, end) not in seen:
            seen.add((path, start, end))
            plan.takes.append({"item": item, "name": label, "path": path, "start_frame": start, "end_frame": end})
    if not plan.takes:
        said = "; ".join(f"{s['clip']}: {s['message']}" for s in plan.skipped[:3])
        raise InvalidArgumentError(f"{where}: no take to adapt on" + (f" ({said})" if said else ""),
                                   hint=f"select takes of at least {MIN_TAKE_FRAMES} frames (3 s at 25 fps) where the actor faces the "
                                   "camera and speaks, with the production sound in their media")
    if len(plan.takes) > MAX_TAKES:
        raise InvalidArgumentError(f"{where}: {len(plan.takes)} takes; one adaptation learns from at most {MAX_TAKES}",
                                   hint="select fewer, longer takes")
    return plan


def _audio_track(dub: dict, rate: Fraction, where: str) -> otio.schema.Track:
    """The panel's dub track (``{index, name, clips}``) as an OTIO audio track at the sequence's rate."""
    dub_index = _index(dub, "index", f"{where} dub_track")
    dub_clips = dub["clips"]
    audio = otio.schema.Track(name=str(dub.get("name") or f"A{dub_index + 1}")[:200], kind=otio.schema.TrackKind.Audio)
    pieces = []
    for k, c in enumerate(dub_clips):
        w = f"{where} dub clip {k}"
        if not isinstance(c, dict):
            raise InvalidArgumentError(f"{w}: must be a map")
        start, end, src_in = (parse_ticks(c.get(key), where=f"{w} {key}") for key in ("start", "end", "in"))
        if end > start:
            pieces.append((ticks_to_frames(start, rate), ticks_to_frames(end, rate), ticks_to_frames(src_in, rate), _text(c, "path", w), str(c.get("name") or "")))
    cursor = Fraction(0)
    for a, b, src_a, path, name in sorted(pieces, key=lambda p: p[0]):
        if a < cursor:  # overlapping audio on one track cannot happen in Premiere; keep the later clip's tail
            src_a += cursor - a
            a = cursor
            if b <= a:
                continue
        if a > cursor:
            audio.append(otio.schema.Gap(duration=otio.opentime.RationalTime(float(a - cursor), float(rate))))
        audio.append(otio.schema.Clip(
            name=name or Path(path).name,
            media_reference=otio.schema.ExternalReference(target_url=path),
            source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(float(src_a), float(rate)), otio.opentime.RationalTime(float(b - a), float(rate))),
        ))
        cursor = b
    return audio

