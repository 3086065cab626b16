"""Write-back: the dubbed clips as a new video track directly above each picture track.

Each dubbed clip sits at exactly the record frames of the original clip's cut (or of the
spoken stretch, when only part of the clip was dubbed), with gaps elsewhere; it references the
rendered file through an ``ExternalReference`` whose ``available_range`` counts from the
rendered file's own timecode (the Resolve shape: a bare path, timecode-based ranges).
When the shot took a dissolve's handles, the dub track repeats the dissolve (to the next
dubbed clip, or to the gap, i.e. the original underneath).  ``metadata["edidub"]`` carries the
job id, model, settings, QC and passthrough ranges; a marker marks each passthrough stretch.
Every other track and clip is left as it was.
"""

from __future__ import annotations

import copy
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import RenderedClip, parse_rate

from ._time import exact_rate, round_frame, rt, seconds
from .shots import METADATA_KEY, _time_effect_name

PASSTHROUGH_MARKER_COLOR = otio.schema.MarkerColor.YELLOW


def dub_track_name(language: str) -> str:
    return f"EdiDub {language.strip().upper()}"


def add_dub_track(
    timeline: otio.schema.Timeline,
    rendered: Sequence[RenderedClip],
    *,
    language: str,
    job_id: str | None = None,
    settings: Mapping[str, Any] | None = None,
) -> otio.schema.Timeline:
    """A copy of ``timeline`` with a video track ``"EdiDub <LANG>"`` above each picture track
    that has dubbed clips.  ``rendered[i].record`` is the ``record`` map of the ShotRequest,
    echoed back by the engine."""
    if not language or not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", language.strip()):
        raise InvalidArgumentError(f"dub language {language!r} must be a short code such as 'fr' or 'pt-BR'")
    name = timeline.name or "(unnamed timeline)"
    out = copy.deepcopy(timeline)
    video = list(out.video_tracks())
    gst = out.global_start_time
    by_track: dict[int, list[RenderedClip]] = {}
    for clip in rendered:
        rec = clip.record or {}
        where = f"rendered clip {clip.shot_id!r}"
        for key in ("track_index", "start_frame", "end_frame", "cut_start_frame", "cut_end_frame", "rate", "source_start_frame"):
            if key not in rec:
                raise InvalidArgumentError(
                    f"{where}: its record has no {key!r}", hint="write back only clips rendered from shots made by otio_adapters"
                )
        if rec.get("timeline") not in (None, name, timeline.name):
            raise InvalidArgumentError(f"{where} belongs to timeline {rec.get('timeline')!r}, not {name!r}")
        if not 0 <= rec["track_index"] < len(video):
            raise InvalidArgumentError(f"{where}: timeline {name!r} has no video track V{rec['track_index'] + 1}")
        by_track.setdefault(rec["track_index"], []).append(clip)

    stack = out.tracks
    # insert from the top down so the positions found first stay valid
    positions = sorted(((list(stack).index(video[k]), k) for k in by_track), reverse=True)
    for pos, k in positions:
        picture = video[k]
        rate = exact_rate(gst.rate if gst is not None else parse_rate(by_track[k][0].record["rate"], where="record"), where=name)
        gst_frames = 0 if gst is None else round_frame(seconds(gst) * rate)
        track = _build_track(out, picture, k, sorted(by_track[k], key=lambda c: c.record["start_frame"]), rate, gst_frames,
                             language, job_id, settings)
        stack.insert(pos + 1, track)
    return out


def _build_track(timeline, picture, k, clips, rate, gst_frames, language, job_id, settings):
    track = otio.schema.Track(name=dub_track_name(language), kind=otio.schema.TrackKind.Video)
    track.metadata[METADATA_KEY] = {"dub_of_track": picture.name or f"V{k + 1}", "language": language, "job_id": job_id}
    origin = Fraction(0)
    if picture.source_range is not None:
        origin = seconds(picture.source_range.start_time) * rate
        track.source_range = copy.deepcopy(picture.source_range)
    cursor = Fraction(0)  # track time, in frames of `rate`, where the next item goes (a track's items start at 0)
    prev_clip = None  # (RenderedClip, record end) of the clip just placed, when it ends at the cursor
    for rc in clips:
        rec = rc.record
        where = f"rendered clip {rc.shot_id!r}"
        lo = max(rec["start_frame"], rec["cut_start_frame"])
        hi = min(rec["end_frame"], rec["cut_end_frame"])
        if hi <= lo:
            raise InvalidArgumentError(f"{where}: record frames [{lo}, {hi}) are empty")
        t0 = Fraction(lo - gst_frames) + origin
        if t0 < cursor:
            raise InvalidArgumentError(f"{where} overlaps the dubbed clip before it on track {picture.name!r}")
        takes_in = rec["start_frame"] < rec["cut_start_frame"] and rec.get("transition_in")
        takes_out = rec["end_frame"] > rec["cut_end_frame"] and rec.get("transition_out")
        if t0 > cursor:
            track.append(_gap(track, rt(t0 - cursor, rate), rate))
            prev_clip = None
        if takes_in:
            if prev_clip is not None and prev_clip.record.get("transition_out") and prev_clip.record["end_frame"] > prev_clip.record["cut_end_frame"]:
                pass  # the previous dubbed clip already added this dissolve
            elif len(track) == 0:
                pass  # nothing before it on the dub track to dissolve from; the handles stay in the media
            else:
                track.append(_transition(rec["transition_in"]))
        clip = _dub_clip(timeline, rc, lo, hi, rate, job_id, settings, language)
        track.append(clip)
        cursor = t0 + (hi - lo)
        prev_clip = rc
        if takes_out:
            track.append(_transition(rec["transition_out"]))
            # a dissolve to a gap needs the gap: it is the next item either way
    if track and isinstance(track[-1], otio.schema.Transition):
        track.append(_gap(track, track[-1].out_offset.rescaled_to(float(rate)), rate))
    return track


def _gap(track, duration, rate):
    """A gap; after a dissolve it starts at the dissolve's in_offset, as Avid's filler does, so the
    cmx_3600 writer (which reads the b-side's source in minus the offset) stays at >= 0."""
    start = rt(0, rate)
    if len(track) and isinstance(track[-1], otio.schema.Transition):
        start = track[-1].in_offset.rescaled_to(float(rate))
    return otio.schema.Gap(source_range=otio.opentime.TimeRange(start, duration))


def _transition(info) -> otio.schema.Transition:
    r = info["rate"]
    return otio.schema.Transition(
        name=info.get("name") or "Dissolve",
        transition_type=info.get("transition_type") or otio.schema.TransitionTypes.SMPTE_Dissolve,
        in_offset=otio.opentime.RationalTime(info["in_offset"], r),
        out_offset=otio.opentime.RationalTime(info["out_offset"], r),
    )


def _dub_clip(timeline, rc: RenderedClip, lo, hi, rec_rate, job_id, settings, language):
    rec = rc.record
    where = f"rendered clip {rc.shot_id!r}"
    media_rate = exact_rate(rc.rate, where=where)
    n = rc.end_frame - rc.start_frame
    if n <= 0:
        raise InvalidArgumentError(f"{where}: frames [{rc.start_frame}, {rc.end_frame}) are empty")
    tc_frames = 0
    if rc.timecode:
        try:
            tc_frames = round(otio.opentime.from_timecode(rc.timecode, float(media_rate)).value)
        except Exception:
            raise InvalidArgumentError(f"{where}: timecode {rc.timecode!r} is not a timecode at {media_rate} fps") from None
    per = media_rate / rec_rate
    exact = rec.get("source_start_exact")  # the sub-frame start when media and timeline rates differ
    try:
        start = Fraction(exact) if isinstance(exact, str) else Fraction(rec["source_start_frame"])
    except (ValueError, ZeroDivisionError):
        raise InvalidArgumentError(f"{where}: its record's source_start_exact {exact[:40]!r} is not a fraction such as '133/20'") from None
    src = start + (lo - rec["start_frame"]) * per  # original source frame at lo
    pos = src - _source_start_of(rc)  # frame of the rendered file at lo
    length = (hi - lo) * per
    if pos < 0 or pos + length > n + Fraction(1, 2):
        raise InvalidArgumentError(
            f"{where}: the rendered file holds source frames [{rc.start_frame}, {rc.end_frame}), "
            f"not [{float(src):g}, {float(src + length):g}) that record frames [{lo}, {hi}) need",
            hint="render the shot's whole source range",
        )
    ref = otio.schema.ExternalReference(
        target_url=rc.path,
        available_range=otio.opentime.TimeRange(rt(tc_frames, media_rate), rt(n, media_rate)),
    )
    original = _find_original(timeline, rec)
    clip = otio.schema.Clip(
        name=f"{rec.get('clip') or rc.shot_id} [{dub_track_name(language)}]",
        media_reference=ref,
        # at the timeline's rate, as Resolve and Premiere keep a clip's range: FCP7 XML writes a clip item's
        # in/out and start/end in its range's rate, and the sequence is read at the timeline's
        source_range=otio.opentime.TimeRange(rt((tc_frames + pos) / per, rec_rate), rt(hi - lo, rec_rate)),
    )
    meta: dict[str, Any] = {
        "shot_id": rc.shot_id,
        "job_id": job_id,
        "language": language,
        "model": dict(rc.model),
        "settings": dict(settings or {}),
        "qc": dict(rc.qc),
        "frames_edited": rc.frames_edited,
        "passthrough": [asdict(p) for p in rc.frames_passed_through],
        "rendered": {"start_frame": rc.start_frame, "end_frame": rc.end_frame, "timecode": rc.timecode},
        "record": dict(rec),
    }
    if original is not None and original.effects:
        if lo == rec["cut_start_frame"] and hi == rec["cut_end_frame"]:
            for e in original.effects:
                if not _time_effect_name([e]):
                    clip.effects.append(copy.deepcopy(e))
        else:
            meta["effects_not_copied"] = [e.effect_name or e.name for e in original.effects]
    clip.metadata[METADATA_KEY] = _jsonable(meta)
    for p in rc.frames_passed_through:
        s0 = max(Fraction(p.start_frame - rc.start_frame), pos)
        s1 = min(Fraction(p.end_frame - rc.start_frame), pos + length)
        if s1 <= s0:
            continue
        clip.markers.append(
            otio.schema.Marker(
                name=f"EdiDub passthrough: {p.reason}",
                marked_range=otio.opentime.TimeRange(rt(tc_frames + s0, media_rate), rt(s1 - s0, media_rate)),
                color=PASSTHROUGH_MARKER_COLOR,
                metadata={METADATA_KEY: {"reason": p.reason, "start_frame": p.start_frame, "end_frame": p.end_frame}},
            )
        )
    return clip


def _source_start_of(rc: RenderedClip) -> int:
    """The source frame the rendered file starts at.  ``edidub_engine.render`` numbers a clip's frames from 0
    (``start_frame=0``) and echoes the source range in ``qc["source"]``; other runners give source frames."""
    source = rc.qc.get("source") if isinstance(rc.qc, Mapping) else None
    if isinstance(source, Mapping):
        start, end = source.get("start_frame"), source.get("end_frame")
        if isinstance(start, int) and isinstance(end, int) and end - start == rc.end_frame - rc.start_frame:
            return start
    return rc.start_frame


def _find_original(timeline, rec):
    """The original clip by its index path, when it is still there under the same name."""
    path = rec.get("clip_path") or []
    try:
        node = timeline.tracks
        for i in path:
            node = node[i]
    except (IndexError, TypeError):
        return None
    if isinstance(node, otio.schema.Clip) and (node.name or "") == (rec.get("clip") or ""):
        return node
    return None


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# ---------------------------------------------------------------------------------------------- output

WRITERS = {".otio": "otio_json", ".xml": "fcp_xml", ".edl": "cmx_3600"}


def dubbed_to_string(timeline: otio.schema.Timeline, adapter_name: str, *, language: str | None = None) -> tuple[str, list[str]]:
    """The dubbed timeline as text for ``adapter_name`` (``otio_json``, ``fcp_xml``, ``cmx_3600``),
    and notes on what the format could not hold."""
    notes: list[str] = []
    tl = timeline
    if adapter_name == "fcp_xml":
        tl = _for_fcp_xml(timeline, notes)
    elif adapter_name == "cmx_3600":
        dub = [t for t in timeline.video_tracks() if METADATA_KEY in t.metadata and t.name.startswith("EdiDub")]
        if language is not None:
            dub = [t for t in dub if t.name == dub_track_name(language)]
        if len(dub) != 1:
            raise InvalidArgumentError(
                f"an EDL holds one video track; timeline {timeline.name!r} has {len(dub)} EdiDub track(s)",
                hint="write .otio or FCP7 XML, or one language's single dub track",
            )
        # the cmx_3600 writer ignores global_start_time: carry the record start as a leading gap
        track = copy.deepcopy(dub[0])
        gst = timeline.global_start_time
        rate = gst.rate if gst is not None else next(iter(track.find_clips())).source_range.duration.rate
        shift = (gst.value if gst is not None else 0) - (
            track.source_range.start_time.rescaled_to(rate).value if track.source_range is not None else 0
        )
        track.source_range = None
        # One reel per dubbed clip: the writer's default (the file name cut to 8 characters) gives every render
        # of one camera roll the same reel, and a conform by reel and timecode would then link the wrong file.
        code = re.sub(r"[^A-Z0-9]", "", dub[0].name.removeprefix("EdiDub").upper())[:3] or "X"
        for i, clip in enumerate(track.find_clips(), 1):
            clip.metadata.setdefault("cmx_3600", {})["reel"] = f"D{code}{i:0{7 - len(code)}d}"
        if shift < 0:
            raise InvalidArgumentError(f"timeline {timeline.name!r}: the dub track starts before record frame 0; an EDL cannot hold it")
        if shift > 0:
            track.insert(0, otio.schema.Gap(source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(shift, rate))))
        tl = otio.schema.Timeline(name=timeline.name)
        tl.tracks.append(track)
        notes.append(f"EDL: only the dub track {dub[0].name!r} is written (CMX 3600 holds one video track)")
    try:
        kwargs = {}
        if adapter_name == "cmx_3600":
            kwargs["rate"] = rate
        return otio.adapters.write_to_string(tl, adapter_name=adapter_name, **kwargs), notes
    except InvalidArgumentError:
        raise
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        if adapter_name == "fcp_xml":  # its file writer handles files only: name what the cut holds instead
            kinds = {"GeneratorReference": "generator clips (black, titles, bars)", "ImageSequenceReference": "image sequences"}
            counts = Counter(type(c.media_reference).__name__ for c in tl.find_clips())
            held = [f"{n} {kinds[k]}" for k, n in sorted(counts.items()) if k in kinds]
            if held:
                why = f"it cannot write {' or '.join(held)}"
        raise InvalidArgumentError(
            f"timeline {timeline.name!r}: the {adapter_name} adapter cannot write it ({why})",
            hint="write .otio, which holds everything",
        ) from None


def _for_fcp_xml(timeline: otio.schema.Timeline, notes: list[str]) -> otio.schema.Timeline:
    """A copy the fcp_xml writer can write, with notes on what changed: file:// URLs, the dub track's name,
    offline clips as file references, and a range for media of unknown length (an EDL's clips carry none)."""
    tl = copy.deepcopy(timeline)
    for clip in tl.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url and "://" not in ref.target_url:
            p = Path(ref.target_url)
            if p.is_absolute():
                ref.target_url = p.as_uri()  # Premiere wants file:// URLs
    notes.append("FCP7 XML: bare media paths written as file:// URLs")
    for track in tl.video_tracks():  # the writer drops track names: carry the dub track's as <name> and Premiere's MZ.TrackName
        if METADATA_KEY in track.metadata and track.name:
            meta = dict(track.metadata.get("fcp_xml") or {})
            meta.update({"name": track.name, "@MZ.TrackName": track.name})
            track.metadata["fcp_xml"] = meta
    offline = [c for c in tl.find_clips() if isinstance(c.media_reference, otio.schema.MissingReference)]
    for clip in offline:  # the writer cannot write a MissingReference; FCP7 XML says offline with a file that is not there
        clip.media_reference = otio.schema.ExternalReference(target_url=clip.name or "offline",
                                                             available_range=clip.media_reference.available_range)
    if offline:
        notes.append(f"FCP7 XML: {len(offline)} offline clip(s) written as file references named after the clip (offline in the NLE)")
    spans: dict[str, tuple] = {}
    bare = [c for c in tl.find_clips() if c.media_reference is not None and c.media_reference.available_range is None
            and c.source_range is not None]

    def key(clip):
        return getattr(clip.media_reference, "target_url", None) or f"offline:{clip.name}"

    for clip in bare:
        r = clip.source_range
        lo, hi = spans.get(key(clip), (r.start_time, r.end_time_exclusive()))
        spans[key(clip)] = (min(lo, r.start_time), max(hi, r.end_time_exclusive()))
    for clip in bare:
        lo, hi = spans[key(clip)]
        clip.media_reference.available_range = otio.opentime.range_from_start_end_time(lo, hi)
    if bare:
        notes.append(f"FCP7 XML: {len(spans)} media file(s) of unknown length given the span the cut uses")
    return tl


def write_dubbed(timeline: otio.schema.Timeline, path, *, language: str | None = None) -> list[str]:
    """Write the dubbed timeline by suffix (.otio, .xml FCP7, .edl CMX 3600); returns notes."""
    path = Path(path)
    adapter = WRITERS.get(path.suffix.lower())
    if adapter is None:
        raise InvalidArgumentError(f"{path}: cannot write {path.suffix!r}", hint=f"use one of {', '.join(WRITERS)}")
    text, notes = dubbed_to_string(timeline, adapter, language=language)
    if path.exists():
        raise InvalidArgumentError(f"{path} already exists; EdiDub never overwrites a file", hint="choose a new name")
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return notes
