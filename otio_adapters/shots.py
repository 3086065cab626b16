"""Timeline → shot list: the one conversion from clip ranges to :class:`ShotRequest` s.

Every caller (Resolve, Premiere, batch, TD scripts) goes through :func:`shots_from_timeline`.

Frames
    * ``source`` frames are the media's own, **file-relative** (counted from the media's first
      frame): ``clip.source_range.start - media.available_range.start``, so a Resolve export
      whose media starts at 01:00:00:00 (86400 at 24 fps) gives 0 for the first frame.
    * ``record`` frames are absolute: the timeline's ``global_start_time`` plus the clip's
      position in its track (an EDL's first record-in is carried the same way, through the
      negative ``source_range`` the cmx_3600 adapter puts on the track).
    * All arithmetic is on exact rationals (``24000/1001``), rounded once at the end.

Which stretch of a clip becomes the shot
    * With a dub track: the clip is a shot when dub speech (a clip on the dub audio track)
      overlaps its cut.  The shot is the spoken stretch plus ``handles`` frames (default
      :data:`DEFAULT_HANDLE_FRAMES` = 12, half a second at 24 fps: enough for the engine's
      crossfade in and out of the edit and for an editor's trim) on each side, clipped to the
      part of the clip that is visible.  ``handles=None`` takes the whole visible clip.
    * Transitions: a clip in a dissolve is visible beyond its cut for the transition's
      ``out_offset`` (outgoing clip) or ``in_offset`` (incoming clip).  When the shot reaches into
      a dissolve at all, it takes the **whole** of the dissolve's extra frames, so the
      dubbed clip can dissolve exactly like the original.  Handles outside the media are
      clipped to the media (a warning); a cut outside the media is a skipped clip.
    * Without a dub track (``dub_track=None``) every picture clip is a shot over its whole
      visible range with an empty ``dub_audio``: a picture-only list for analysis or for a TD
      to fill the dub lines in later.  The daemon refuses such a shot until it has audio.

What is skipped (and listed in :attr:`ShotList.skipped` with a reason code, never silently
dropped or half-converted): see :data:`REASONS`.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import AudioSegment, DubOptions, FaceLine, OutputSpec, ShotRequest, SourceRange, parse_rate

from ._time import exact_rate, format_rate, round_frame, seconds

METADATA_KEY = "edidub"
DEFAULT_HANDLE_FRAMES = 12

REASONS: dict[str, str] = {
    "disabled": "the clip or its track is disabled",
    "missing_media": "the clip has no media file (offline / MissingReference), or the file does not exist",
    "generator": "the clip is generated (title, matte, bars): there is no camera picture to dub",
    "unsupported_media": "the media reference is an image sequence or a remote URL, which the engine cannot decode",
    "outside_media": "the clip's frames are not inside its media (e.g. a still image held longer than one frame)",
    "time_effect": "speed change, freeze frame, time warp or time remap: the frames would not match the speech",
    "nested": "a nested sequence / compound clip that cannot be flattened exactly",
    "no_dub": "no dub speech under the clip on the dub track",
    "dub_unusable": "a dub audio clip under the shot is offline or retimed",
    "untrusted_source": "the reader of this file cannot give the clip's source frames exactly",
}
_TIME_WORDS = ("retime", "time remap", "timeremap", "speed", "timewarp", "time warp", "freeze", "reverse")


@dataclass(frozen=True)
class SkippedClip:
    clip: str
    track: str
    track_index: int
    record_start_frame: int | None
    record_end_frame: int | None
    reason: str  # a key of REASONS
    message: str
    clip_path: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "clip": self.clip,
            "track": self.track,
            "track_index": self.track_index,
            "record_start_frame": self.record_start_frame,
            "record_end_frame": self.record_end_frame,
            "reason": self.reason,
            "message": self.message,
            "clip_path": list(self.clip_path),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SkippedClip":
        data = dict(data)
        data["clip_path"] = tuple(data.get("clip_path") or ())
        return cls(**data)


@dataclass
class ShotList:
    timeline: str
    rate: Fraction
    global_start_frame: int
    dub_track: str | None
    handles: int | None
    shots: list[ShotRequest] = field(default_factory=list)
    skipped: list[SkippedClip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edidub_shot_list": 1,
            "timeline": self.timeline,
            "rate": format_rate(self.rate),
            "global_start_frame": self.global_start_frame,
            "dub_track": self.dub_track,
            "handles": self.handles,
            "shots": [s.to_dict() for s in self.shots],
            "skipped": [s.to_dict() for s in self.skipped],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Any) -> "ShotList":
        if not isinstance(data, dict) or "shots" not in data:
            raise InvalidArgumentError("not an EdiDub shot list: expected a map with 'shots'")
        return cls(
            timeline=str(data.get("timeline") or ""),
            rate=parse_rate(data.get("rate") or "24", where="shot list"),
            global_start_frame=int(data.get("global_start_frame") or 0),
            dub_track=data.get("dub_track"),
            handles=data.get("handles"),
            shots=[shot_from_dict(s) for s in data["shots"]],
            skipped=[SkippedClip.from_dict(s) for s in data.get("skipped") or ()],
            warnings=list(data.get("warnings") or ()),
        )


def shot_from_dict(data: Any) -> ShotRequest:
    """``ShotRequest.from_dict`` that also accepts a picture-only shot (``dub_audio: []``, and no faces with lines)."""
    if isinstance(data, dict) and data.get("dub_audio") in ([], (), None) and not (data.get("lines") and not data.get("speakers")):
        probe = dict(data, dub_audio=[{"path": "-"}])
        return replace(ShotRequest.from_dict(probe), dub_audio=())
    return ShotRequest.from_dict(data)


# ----------------------------------------------------------------------------------------------
# public entry point


def shots_from_timeline(
    timeline: otio.schema.Timeline,
    *,
    dub_track: str | int | None,
    picture_tracks: str | int | Sequence[str | int] | None = None,
    handles: int | None = DEFAULT_HANDLE_FRAMES,
    output: OutputSpec | None = None,
    options: DubOptions | None = None,
    resolve_media: Callable[[otio.schema.Clip], otio.schema.ExternalReference | None] | None = None,
    check_media_exists: bool = False,
    line_tracks: Sequence[tuple[str, str | int]] | None = None,
) -> ShotList:
    """Turn ``timeline`` into a :class:`ShotList`.

    ``dub_track``: the audio track that holds the dub speech — a name, a 0-based index among
    the audio tracks, or ``"A2"`` (1-based, as NLEs label them); ``None`` makes every picture
    clip a picture-only shot (see the module docstring).
    ``picture_tracks``: video track(s) by name, 0-based index or ``"V1"``; ``None`` = every video track.
    ``handles``: frames of picture kept before and after the spoken stretch (``None``: the whole clip).
    ``output``/``options``: defaults for every shot; a clip's ``metadata["edidub"]`` may carry
    ``shot_id``, ``output`` and ``options`` maps that override them for that clip.
    ``resolve_media``: called for a clip whose media is missing (EDLs carry only reel names);
    it returns an ``ExternalReference`` with the media's ``available_range`` or ``None``.
    ``check_media_exists``: also skip clips whose file is not on this machine.
    ``line_tracks``: a two-shot's faces and their dub tracks, ``[(face, track), …]`` (face as ``--face`` takes it,
    track as ``dub_track``), instead of ``dub_track``: each shot's ``lines`` give every face the speech under the clip
    on its own track (a shot where only one face has speech is a one-face shot of that face).
    """
    if not isinstance(timeline, otio.schema.Timeline):
        raise InvalidArgumentError(f"expected an OTIO Timeline, got {type(timeline).__name__}")
    if handles is not None and (isinstance(handles, bool) or not isinstance(handles, int) or handles < 0):
        raise InvalidArgumentError(f"handles must be a whole number of frames >= 0 or None, got {handles!r}")
    name = timeline.name or "(unnamed timeline)"
    where = f"timeline {name!r}"
    stack = timeline.tracks
    if stack.source_range is not None and stack.source_range.start_time.value != 0:
        raise InvalidArgumentError(f"{where}: the top-level stack is trimmed; that is not supported", hint="flatten or re-export the timeline")

    video = list(timeline.video_tracks())
    audio = list(timeline.audio_tracks())
    if not video:
        raise InvalidArgumentError(
            f"{where} has no video track",
            hint="the file (or the adapter that read it) gave no picture; check it opens in an NLE, or re-export it as OTIO/FCP7 XML",
        )
    rate = _timeline_rate(timeline, video, where)
    gst = timeline.global_start_time
    gst_frames = 0 if gst is None else round_frame(seconds(gst, where=where) * rate)
    ctx = _Context(
        timeline=name,
        rate=rate,
        base_s=Fraction(gst_frames) / rate,
        handles=handles,
        resolve_media=resolve_media,
        check_exists=check_media_exists,
        stack_index={id(t): i for i, t in enumerate(stack)},
    )
    chosen = _choose_tracks(picture_tracks, video, "V", where, "video")
    if line_tracks and dub_track is not None:
        raise InvalidArgumentError(f"{where}: name the dub track, or a track per face, not both",
                                   hint="a two-shot's faces each take their line from their own track (line_tracks)")
    sources = [(None, dub_track)] if dub_track is not None else [(str(face), track) for face, track in (line_tracks or [])]
    pieces: list[_Piece] = []
    names = []
    for face, spec in sources:
        dub = _choose_tracks(spec, audio, "A", where, "audio")
        if len(dub) != 1:
            raise InvalidArgumentError(f"{where}: name exactly one dub audio track" + ("" if face is None else f" for face {face}"))
        dub_index, dub_obj = dub[0]
        names.append(_track_label(dub_obj, dub_index, "A") if face is None else f"{face}={_track_label(dub_obj, dub_index, 'A')}")
        for item in _walk_track(ctx, dub_obj, dub_index, "A", ctx.base_s, None, (ctx.stack_index[id(dub_obj)],)):
            pieces.append(replace(_audio_piece(ctx, item), face=face))
    dub = sources or None
    dub_name = ", ".join(names) if names else None

    out = ShotList(timeline=name, rate=rate, global_start_frame=gst_frames, dub_track=dub_name, handles=handles)
    seen_ids: set[str] = set()
    for index, track in chosen:
        for item in _walk_track(ctx, track, index, "V", ctx.base_s, None, (ctx.stack_index[id(track)],)):
            result = _picture_item(ctx, item, pieces, dub is not None, dub_name, output or OutputSpec(), options or DubOptions())
            if isinstance(result, SkippedClip):
                out.skipped.append(result)
                continue
            shot = result
            if shot.shot_id in seen_ids:  # a clip metadata id used twice
                shot = replace(shot, shot_id=f"{shot.shot_id}_{len(seen_ids)}")
            seen_ids.add(shot.shot_id)
            out.shots.append(shot)
    out.warnings.extend(ctx.warnings)
    return out


# ----------------------------------------------------------------------------------------------
# internals


@dataclass
class _Context:
    timeline: str
    rate: Fraction
    base_s: Fraction
    handles: int | None
    resolve_media: Callable | None
    check_exists: bool
    stack_index: dict[int, int]
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Item:
    """A clip as the timeline shows it, in record frames (exact Fractions)."""

    clip: otio.schema.Clip | otio.schema.Stack
    track_name: str  # the label used for ids, e.g. "V1"
    track_display: str  # the track's own name, or its label when unnamed
    track_index: int
    path: tuple[int, ...]
    item_path: tuple[int, ...]  # item indices only, for the shot id
    cut: tuple[Fraction, Fraction]  # record frames of the cut [a, b)
    extend_before: Fraction  # frames visible before the cut (incoming transition)
    extend_after: Fraction
    transition_in: otio.schema.Transition | None
    transition_out: otio.schema.Transition | None
    front_trim: Fraction = Fraction(0)  # record frames of the clip cut away by an enclosing window
    problem: tuple[str, str] | None = None  # (reason, message) when not convertible


@dataclass
class _Piece:
    start: Fraction  # record frames
    end: Fraction
    path: str | None
    file_start_s: Fraction  # seconds into the audio file at `start`
    problem: str | None
    name: str
    face: str | None = None  # a two-shot's face this speech belongs to (its track's), None: the shot's one face


def _timeline_rate(timeline, video, where) -> Fraction:
    gst = timeline.global_start_time
    if gst is not None:
        return exact_rate(gst.rate, where=f"{where} start time")
    for track in video:
        for child in track:
            if isinstance(child, (otio.schema.Clip, otio.schema.Gap, otio.schema.Stack)):
                return exact_rate(child.trimmed_range().duration.rate, where=f"{where} track {track.name!r} item {child.name!r}")
    raise InvalidArgumentError(f"{where}: no clip to take a frame rate from", hint="the video tracks are empty")


def _track_label(track, index, prefix) -> str:
    return track.name if track.name else f"{prefix}{index + 1}"


def _choose_tracks(spec, tracks, prefix, where, kind) -> list[tuple[int, otio.schema.Track]]:
    labels = ", ".join(f"{prefix}{i + 1}={t.name!r}" for i, t in enumerate(tracks)) or "none"
    if spec is None:
        return list(enumerate(tracks))
    specs = [spec] if isinstance(spec, (str, int)) else list(spec)
    chosen = []
    for s in specs:
        if isinstance(s, bool) or not isinstance(s, (str, int)):
            raise InvalidArgumentError(f"{where}: {kind} track {s!r} must be a name or an index")
        if isinstance(s, int):
            if not 0 <= s < len(tracks):
                raise InvalidArgumentError(f"{where}: there is no {kind} track {s} (0-based)", hint=f"{kind} tracks: {labels}")
            chosen.append((s, tracks[s]))
            continue
        named = [(i, t) for i, t in enumerate(tracks) if t.name == s]
        if len(named) > 1:
            raise InvalidArgumentError(
                f"{where}: {len(named)} {kind} tracks are named {s!r}",
                hint=f"name it by position instead ({', '.join(f'{prefix}{i + 1}' for i, _ in named)})",
            )
        if not named:
            m = re.fullmatch(rf"{prefix}(\d+)", s.strip(), re.IGNORECASE)
            if m and 1 <= int(m.group(1)) <= len(tracks):
                named = [(int(m.group(1)) - 1, tracks[int(m.group(1)) - 1])]
        if not named:
            raise InvalidArgumentError(f"{where}: no {kind} track named {s!r}", hint=f"{kind} tracks: {labels}")
        chosen.append(named[0])
    return chosen


def _walk_track(ctx, track, index, prefix, base_s, window, path, item_prefix=(), track_enabled=True):
    """Yield an :class:`_Item` for every clip (or unflattenable stack) visible on ``track``.

    ``base_s``: record seconds (from frame 0 of the timeline's count) where the track's time
    ``origin`` lands; ``window``: record frames [lo, hi) the enclosing stack shows, or None.
    """
    label = f"{prefix}{index + 1}"
    display = track.name or label
    origin = Fraction(0)
    sr = track.source_range
    if sr is not None:
        origin = seconds(sr.start_time, where=f"track {display!r}")
        if sr.start_time.value >= 0:  # a real trim; the cmx_3600 adapter's negative start only offsets
            lo = (base_s) * ctx.rate
            hi = lo + seconds(sr.duration) * ctx.rate
            window = (lo, hi) if window is None else (max(window[0], lo), min(window[1], hi))
    track_time = _time_effect_name(track.effects)
    enabled = track_enabled and track.enabled
    children = list(track)
    for i, child in enumerate(children):
        if isinstance(child, (otio.schema.Gap, otio.schema.Transition)):
            continue
        rng = track.range_of_child_at_index(i)
        a = (base_s + seconds(rng.start_time, where=display) - origin) * ctx.rate
        b = a + seconds(rng.duration, where=display) * ctx.rate
        t_in = children[i - 1] if i > 0 and isinstance(children[i - 1], otio.schema.Transition) else None
        t_out = children[i + 1] if i + 1 < len(children) and isinstance(children[i + 1], otio.schema.Transition) else None
        ext_before = seconds(t_in.in_offset) * ctx.rate if t_in else Fraction(0)
        ext_after = seconds(t_out.out_offset) * ctx.rate if t_out else Fraction(0)
        front = Fraction(0)
        if window is not None:
            if b <= window[0] or a >= window[1]:
                continue
            if a < window[0]:
                a, front, ext_before = window[0], window[0] - a, Fraction(0)
            if b > window[1]:
                b, ext_after = window[1], Fraction(0)
        item = _Item(child, label, display, index, path + (i,), item_prefix + (i,), (a, b), ext_before, ext_after, t_in, t_out, front)
        if not enabled or not child.enabled:
            item.problem = ("disabled", "the clip is disabled" if child.enabled else "the clip's track is disabled")
            yield item
            continue
        if track_time:
            item.problem = ("time_effect", f"its track has a time effect ({track_time})")
            yield item
            continue
        if isinstance(child, (otio.schema.Stack, otio.schema.Track)):
            yield from _walk_nested(ctx, child, item, prefix, index, label, display)
            continue
        yield item


def _walk_nested(ctx, stack, item, prefix, index, label, display):
    """Flatten a nested sequence when that is exact: one track with content, no effects on it.

    A nested Stack is the usual shape; a Track directly inside a track is what OTIO's AAF reader
    makes of an Avid nest such as a Submaster effect (it crashed the conversion with an
    AttributeError: a track has no media reference)."""
    kind = otio.schema.TrackKind.Video if prefix == "V" else otio.schema.TrackKind.Audio
    if isinstance(stack, otio.schema.Track):
        tracks = [stack] if stack.kind == kind else []
    else:
        tracks = [t for t in stack if isinstance(t, otio.schema.Track) and t.kind == kind]
    with_content = [t for t in tracks if any(isinstance(c, (otio.schema.Clip, otio.schema.Stack)) for c in t)]
    reason = None
    if _time_effect_name(stack.effects):
        reason = f"the nested sequence has a time effect ({_time_effect_name(stack.effects)})"
    elif stack.effects:
        reason = "the nested sequence carries effects"
    elif not with_content:
        reason = "the nested sequence holds no clips in this file"
    elif len(with_content) > 1:
        reason = f"the nested sequence composites {len(with_content)} tracks"
    elif item.extend_before or item.extend_after:
        reason = "the nested sequence is in a transition"
    if reason:
        item.problem = ("nested", reason)
        yield item
        return
    inner = with_content[0]
    window = item.cut
    if inner is stack:  # a track in a track: its own source range is its trim, which _walk_track applies
        yield from _walk_track(ctx, inner, index, prefix, item.cut[0] / ctx.rate, window, item.path, item.item_path, True)
        return
    inner_start = stack.trimmed_range().start_time
    base_s = item.cut[0] / ctx.rate - seconds(inner_start)
    yield from _walk_track(
        ctx, inner, index, prefix, base_s, window, item.path + (list(stack).index(inner),), item.item_path, True
    )


def _time_effect_name(effects) -> str | None:
    for e in effects:
        if isinstance(e, otio.schema.FreezeFrame):
            return "freeze frame"
        if isinstance(e, otio.schema.LinearTimeWarp):
            if e.time_scalar == 1.0:
                continue
            return f"speed {e.time_scalar * 100:g}%"
        if isinstance(e, otio.schema.TimeEffect):
            return f"time effect {e.effect_name or e.name or type(e).__name__}"
        fcp = e.metadata.get("fcp_xml") if hasattr(e.metadata, "get") else None
        if fcp is not None and hasattr(fcp, "get") and str(fcp.get("effectid", "")).lower() in ("timeremap", "time remap"):
            return "FCP time remap"
        name = f"{e.effect_name or ''} {e.name or ''}".lower()
        if any(w in name for w in _TIME_WORDS):
            resolve = e.metadata.get("Resolve_OTIO") if hasattr(e.metadata, "get") else None
            if resolve is not None and not list(resolve.get("Parameters") or []):
                continue  # Resolve writes an empty "Retime and Scaling" block on every clip
            return f"effect {(e.effect_name or e.name).strip()}"
    return None


def _media_path(ref) -> tuple[str | None, str | None]:
    """(path, problem reason) for a media reference."""
    if isinstance(ref, otio.schema.GeneratorReference):
        return None, "generator"
    if isinstance(ref, otio.schema.ImageSequenceReference):
        return None, "unsupported_media"
    if not isinstance(ref, otio.schema.ExternalReference) or not ref.target_url:
        return None, "missing_media"
    return url_to_path(ref.target_url)


def url_to_path(url: str) -> tuple[str | None, str | None]:
    """``file://`` URL → local path (percent-decoded; ``/D:/x`` → ``D:/x``); a bare path is kept."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "file":
        path = urllib.parse.unquote(parsed.path)
        if re.match(r"^/[A-Za-z]:[/\\]", path):
            path = path[1:]
        if parsed.netloc not in ("", "localhost"):
            path = f"//{parsed.netloc}{path}"
        return path, None
    if parsed.scheme and len(parsed.scheme) > 1:  # http:, s3: … (a one-letter "scheme" is a drive)
        return None, "unsupported_media"
    return url, None


def _media_extent(ref, rate, where) -> tuple[Fraction, Fraction | None]:
    """(first frame, frame count) of the media in its own rate; (0, None) when unknown."""
    avail = ref.available_range
    if avail is None:
        return Fraction(0), None
    start = seconds(avail.start_time, where=where) * rate
    return start, seconds(avail.duration, where=where) * rate


def _audio_piece(ctx, item: _Item) -> _Piece:
    a, b = item.cut
    clip = item.clip
    name = clip.name or "(unnamed)"
    if item.problem:
        return _Piece(a, b, None, Fraction(0), f"{name}: {item.problem[1]}", name)
    if _time_effect_name(clip.effects):
        return _Piece(a, b, None, Fraction(0), f"{name} is retimed ({_time_effect_name(clip.effects)})", name)
    ref = _resolved_reference(ctx, clip)
    path, problem = _media_path(ref)
    if path is None or (ctx.check_exists and not os.path.exists(path)):
        return _Piece(a, b, None, Fraction(0), f"{name} has no usable media file", name)
    src = clip.trimmed_range()
    avail = ref.available_range
    file_start = seconds(src.start_time) - (seconds(avail.start_time) if avail is not None else 0) + item.front_trim / ctx.rate
    return _Piece(a, b, path, file_start, None, name)


def _resolved_reference(ctx, clip):
    ref = clip.media_reference
    if ctx.resolve_media is not None and not (
        isinstance(ref, otio.schema.ExternalReference) and ref.target_url
    ):
        found = ctx.resolve_media(clip)
        if found is not None:
            return found
    return ref


def _skip(item: _Item, reason: str, message: str, ctx, start=None, end=None) -> SkippedClip:
    a, b = item.cut
    return SkippedClip(
        clip=item.clip.name or "",
        track=item.track_display,
        track_index=item.track_index,
        record_start_frame=round_frame(a if start is None else start),
        record_end_frame=round_frame(b if end is None else end),
        reason=reason,
        message=f"timeline {ctx.timeline!r}, track {item.track_display!r}, clip {item.clip.name or '(unnamed)'!r}: {message}",
        clip_path=item.path,
    )


def _slug(text: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]{2,4}$", "", text or "")
    return re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_")[:48] or "clip"


def _edidub_meta(clip) -> dict:
    """What EdiDub keeps on a clip (``metadata["edidub"]``) as plain data, or {}."""
    meta = clip.metadata.get(METADATA_KEY) if hasattr(clip.metadata, "get") else None
    return _plain(meta) if meta is not None else {}


def _picture_item(ctx, item: _Item, pieces, has_dub, dub_name, output, options):
    if item.problem:
        return _skip(item, item.problem[0], item.problem[1], ctx)
    clip = item.clip
    if item.cut[1] - item.cut[0] < 1:
        return _skip(item, "outside_media", "the clip is shorter than one frame", ctx)
    untrusted = clip.metadata.get("edidub_untrusted_source") if hasattr(clip.metadata, "get") else None
    if untrusted:
        return _skip(item, "untrusted_source", str(untrusted), ctx)
    time_fx = _time_effect_name(clip.effects)
    if time_fx:
        return _skip(item, "time_effect", f"{time_fx} is not supported; dub the clip before retiming it", ctx)
    ref = _resolved_reference(ctx, clip)
    path, problem = _media_path(ref)
    if path is None:
        return _skip(item, problem, REASONS[problem], ctx)
    if ctx.check_exists and not os.path.exists(path):
        return _skip(item, "missing_media", f"media file {path} does not exist", ctx)

    where = f"timeline {ctx.timeline!r}, track {item.track_display!r}, clip {clip.name!r}"
    src_range = clip.trimmed_range()
    avail = ref.available_range
    media_rate = exact_rate(
        (avail.start_time.rate if avail is not None else src_range.start_time.rate), where=where
    )
    media_start, media_len = _media_extent(ref, media_rate, where)
    if avail is None:
        ctx.warnings.append(f"{where}: the media has no available_range; source frames are taken as file-relative")
    # source frame (file-relative, exact) at the cut's first record frame; media frames per record frame
    per = media_rate / ctx.rate
    src_a = seconds(src_range.start_time, where=where) * media_rate - media_start + item.front_trim * per
    a, b = item.cut

    # the stretch to dub
    lo_vis, hi_vis = a - item.extend_before, b + item.extend_after
    under = [p for p in pieces if p.start < b and p.end > a]
    own_lines = isinstance(_edidub_meta(clip).get("lines"), list) and not _edidub_meta(clip).get("speakers")
    if has_dub and not under and not own_lines:  # (a shot list's faces may carry lines of their own)
        return _skip(item, "no_dub", "no dub speech under the clip", ctx)
    if not has_dub or ctx.handles is None or not under:  # (no speech under it: a shot list's faces with their own lines)
        lo, hi = lo_vis, hi_vis
    else:
        lo = max(lo_vis, min(p.start for p in under) - ctx.handles)
        hi = min(hi_vis, max(p.end for p in under) + ctx.handles)
        if item.transition_in is not None and lo < a + seconds(item.transition_in.out_offset) * ctx.rate:
            lo = lo_vis  # the stretch reaches the incoming dissolve: take all of it
        if item.transition_out is not None and hi > b - seconds(item.transition_out.in_offset) * ctx.rate:
            hi = hi_vis
    lo, hi = Fraction(lo.__floor__()), Fraction(hi.__ceil__())

    # keep it inside the media: the cut must be, the transition handles are clipped
    def src(r):
        return src_a + (r - a) * per

    if src(max(lo, a)) < -Fraction(1, 2) or (media_len is not None and src(min(hi, b)) > media_len + Fraction(1, 2)):
        extent = "" if media_len is None else f" (media has {float(media_len):g} frames)"
        return _skip(
            item, "outside_media",
            f"source frames [{float(src(a)):g}, {float(src(b)):g}) are not inside the media{extent}", ctx,
        )
    if src(lo) < -Fraction(1, 2):
        new_lo = Fraction((a - src_a / per).__ceil__())
        ctx.warnings.append(f"{where}: the media has no frames for the first {float(new_lo - lo):g} frame(s) of the incoming transition")
        lo = new_lo
    if media_len is not None and src(hi) > media_len + Fraction(1, 2):
        new_hi = Fraction((a + (media_len - src_a) / per).__floor__())
        ctx.warnings.append(f"{where}: the media has no frames for the last {float(hi - new_hi):g} frame(s) of the outgoing transition")
        hi = new_hi
    if per == 1:
        src_start, src_end = max(0, round_frame(src(lo))), round_frame(src(hi))
        if abs(src(lo) - round_frame(src(lo))) > Fraction(1, 100):
            ctx.warnings.append(f"{where}: source starts between frames ({float(src(lo)):.3f}); rounded to {src_start}")
    else:
        # Media at another rate than the timeline: at each record frame the NLE shows the media frame under it,
        # so the shot takes every media frame the stretch touches (a rounded range dropped the first or last one).
        eps = Fraction(1, 1000)
        src_start, src_end = max(0, int((src(lo) + eps).__floor__())), int((src(hi) - eps).__ceil__())
    if media_len is not None:
        src_end = min(src_end, round_frame(media_len))
    lead = max(Fraction(0), src(lo) - src_start)  # media frames between the shot's first frame and record frame lo
    if src_end <= src_start:
        return _skip(item, "outside_media", "the clip shows no whole source frame", ctx)

    # dub audio under the stretch (per face, when each face has its track)
    segments, by_face = [], {}
    for p in pieces:
        s0, s1 = max(lo, p.start), min(hi, p.end)
        if s1 <= s0:
            continue
        if p.problem:
            return _skip(item, "dub_unusable", f"dub clip {p.problem}", ctx, lo, hi)
        segment = AudioSegment(
            path=p.path,
            start_s=_secs(p.file_start_s + (s0 - p.start) / ctx.rate),
            duration_s=_secs((s1 - s0) / ctx.rate),
            offset_s=_secs((s0 - lo) / ctx.rate + lead / media_rate),
        )
        segments.append(segment)
        if p.face is not None:
            by_face.setdefault(p.face, []).append(segment)

    lo_i, hi_i, a_i, b_i = int(lo), int(hi), round_frame(a), round_frame(b)
    meta = _edidub_meta(clip)
    shot_id = meta.get("shot_id") if isinstance(meta.get("shot_id"), str) and meta.get("shot_id") else None
    if shot_id is None:
        shot_id = f"{item.track_name}_{'-'.join(f'{i:03d}' for i in item.item_path)}_{_slug(clip.name)}"
    if isinstance(meta.get("output"), dict):
        output = OutputSpec.from_dict({**_asdict(output), **meta["output"]}, f"{where} metadata output")
    if isinstance(meta.get("options"), dict):
        options = DubOptions.from_dict({**_asdict(options), **meta["options"]}, f"{where} metadata options")
    lines, speakers = (), None
    if len(by_face) == 1:  # one face speaks under this clip: a one-face shot of that face
        options = replace(options, face=next(iter(by_face)))
    elif by_face:
        lines = tuple(FaceLine(face=face, dub_audio=tuple(found)) for face, found in by_face.items())
        segments = []
    if isinstance(meta.get("lines"), list) or meta.get("speakers") is not None:
        # a shot list's faces, the supervisor's word: their own lines, or the dub track's speech shared out by a rule
        mixed = meta.get("speakers") is not None
        checked = ShotRequest.from_dict({
            "shot_id": shot_id, "source": {"path": path, "start_frame": src_start, "end_frame": src_end},
            "dub_audio": [_asdict(seg) for seg in segments] if mixed else [], "lines": meta.get("lines"), "speakers": meta.get("speakers"),
            "options": _asdict(options)})
        lines, speakers, options, segments = checked.lines, checked.speakers, checked.options, list(checked.dub_audio)

    record = {
        "timeline": ctx.timeline,
        "track": item.track_display,
        "track_index": item.track_index,
        "clip": clip.name or "",
        "clip_path": list(item.path),
        "start_frame": lo_i,
        "end_frame": hi_i,
        "rate": format_rate(ctx.rate),
        "cut_start_frame": a_i,
        "cut_end_frame": b_i,
        "source_start_frame": src_start,
        "source_start_exact": format_rate(src_start + lead),  # "n/d": the media frame at record lo, to the sub-frame
        "media_start_frame": round_frame(media_start),
        "dub_track": dub_name,
        "transition_in": _transition_dict(item.transition_in),
        "transition_out": _transition_dict(item.transition_out),
    }
    if isinstance(meta.get("origin_record"), dict):  # a shot-list timeline: keep the editorial address
        record.update(meta["origin_record"])
    effects = [e.effect_name or e.name for e in clip.effects]
    if effects:
        record["effects"] = effects
    return ShotRequest(
        shot_id=shot_id,
        source=SourceRange(path, src_start, src_end, media_rate),
        dub_audio=tuple(segments),
        output=output,
        options=options,
        record=record,
        lines=lines,
        speakers=speakers,
    )


def _transition_dict(t) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "name": t.name,
        "transition_type": t.transition_type,
        "in_offset": t.in_offset.value,
        "out_offset": t.out_offset.value,
        "rate": t.in_offset.rate,
    }


def _secs(value: Fraction) -> float:
    return round(float(value), 6)


def _asdict(obj) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(obj)


def _plain(value):
    """OTIO AnyDictionary/AnyVector → dict/list."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "AnyVector":
        return [_plain(v) for v in value]
    return value
