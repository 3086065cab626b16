"""Batch dubbing of a timeline, the OTIO half: one plan from a timeline, one dubbed timeline back.

``edidub batch`` (in-process, daemon or Ray) and the daemon's ``submit_timeline`` share these two
functions, so the same timeline gives the same shots, the same output file names and the same
dubbed timeline whichever way the shots were rendered:

* :func:`plan_batch` — :func:`~otio_adapters.shots_from_timeline` with every shot's output folder,
  codec and **file name fixed** (``<source stem>_<shot_id>_dub``, unsafe characters → ``_``: the
  daemon's default name, so a shot renders to the same name in-process, on Ray or in the daemon).
* :func:`dubbed_timeline` — :func:`~otio_adapters.add_dub_track` with the batch id as the job id and
  the batch's options as the settings, rendered clips in timeline order.
* :func:`shot_fingerprint` — what a resumed batch compares to decide a finished shot still stands.

Imports OTIO and the engine's light contracts only (the daemon's socket loop calls it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path, PureWindowsPath
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import DubOptions, OutputSpec, RenderedClip, ShotRequest

from .shots import DEFAULT_HANDLE_FRAMES, ShotList, SkippedClip, shots_from_timeline
from .writeback import add_dub_track

__all__ = ["BatchPlan", "BatchSummary", "dubbed_timeline", "format_shot_list", "output_name", "plan_batch", "read_timeline_string", "shot_fingerprint"]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")  # the daemon's rule (edidub_engine.daemon.paths)


@dataclass
class BatchPlan:
    """The shots of a batch and what was left out, with the options every shot shares."""

    shot_list: ShotList
    language: str
    options: DubOptions
    codec: str
    output_dir: str | None

    @property
    def shots(self) -> list[ShotRequest]:
        return self.shot_list.shots

    @property
    def skipped(self) -> list[SkippedClip]:
        return self.shot_list.skipped

    def settings(self) -> dict[str, Any]:
        """What ``metadata["edidub"]["settings"]`` of every dubbed clip records."""
        return {"options": asdict(self.options), "codec": self.codec, "handles": self.shot_list.handles,
                "dub_track": self.shot_list.dub_track}


def output_name(shot: ShotRequest) -> str:
    """``<source stem>_<shot_id>_dub`` with unsafe characters replaced: the daemon's default output name."""
    if shot.output.name:
        return shot.output.name
    return _UNSAFE_NAME_CHARS.sub("_", f"{_media_path(shot.source.path).stem}_{shot.shot_id}_dub")


def _media_path(path: str):
    """A media path as written in the cut, which may come from a Windows machine."""
    return PureWindowsPath(path) if "\\" in path else Path(path)


def plan_batch(
    timeline: otio.schema.Timeline,
    *,
    dub_track: str | int,
    picture_tracks: str | int | Sequence[str | int] | None = None,
    language: str,
    output_dir: str | None,
    codec: str = "prores_hq",
    options: DubOptions | None = None,
    handles: int | None = DEFAULT_HANDLE_FRAMES,
    check_media_exists: bool = True,
    line_tracks: Sequence[tuple[str, str | int]] | None = None,
    speakers: str | None = None,
) -> BatchPlan:
    """Every shot of ``timeline`` with a dub line, ready to render into ``output_dir``.

    ``check_media_exists``: clips whose media is not on this machine are skipped (listed) rather
    than failing at render time; the daemon passes False and checks paths against its media roots.
    ``line_tracks``: a two-shot's faces and their dub tracks instead of ``dub_track``; ``speakers``: each shot's dub
    line shared out to the faces that spoke it (see :class:`~edidub_engine.shot.ShotRequest`).
    """
    if dub_track is None and not line_tracks:
        raise InvalidArgumentError("a batch needs the dub audio track (--dub-track)", hint="name the audio track that holds the dub lines")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,16}", (language or "").strip()):
        raise InvalidArgumentError(f"dub language {language!r} must be a short code such as 'fr' or 'pt-BR'")
    options = options or DubOptions()
    shot_list = shots_from_timeline(
        timeline,
        dub_track=dub_track,
        picture_tracks=picture_tracks,
        handles=handles,
        output=OutputSpec(dir=output_dir, codec=codec),
        options=options,
        check_media_exists=check_media_exists,
        line_tracks=line_tracks,
    )
    shot_list.shots = [replace(s, output=replace(s.output, name=output_name(s)),
                               **({"speakers": speakers} if speakers and s.dub_audio and not s.lines else {})) for s in shot_list.shots]
    return BatchPlan(shot_list=shot_list, language=language.strip(), options=options, codec=codec, output_dir=output_dir)


def format_shot_list(shot_list: ShotList) -> str:
    """What a supervisor checks before a night of GPU time: every shot with its record in/out (the timeline's
    timecodes, out exclusive as in an EDL), its source frames and file, its dub line; then every clip left out
    and why.  ``edidub shots`` prints it, and ``edidub batch`` before it renders."""
    from edidub_engine.timebase import frame_to_timecode

    def tc(frame):
        return frame_to_timecode(frame, shot_list.rate) if frame is not None and frame >= 0 else "?"

    def short(message: str) -> str:  # the clip is named in its own columns
        return message.split(": ", 1)[1] if message.startswith("timeline ") and ": " in message else message

    def table(header, rows):
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        return ["  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [header, *rows]]

    def fps(rate):
        return f"{float(rate):.3f}".rstrip("0").rstrip(".") if rate else "?"

    lines = [f"{shot_list.timeline}: {len(shot_list.shots)} shot(s) to dub, {len(shot_list.skipped)} clip(s) left out "
             f"({fps(shot_list.rate)} fps" + (f", dub lines from {shot_list.dub_track!r}" if shot_list.dub_track else ", no dub track: every picture clip")
             + ")"]
    if shot_list.shots:
        rows = []
        for shot in shot_list.shots:
            rec, src = shot.record, shot.source
            dub = ", ".join(f"{Path(a.path).name} {a.start_s:.2f}-{a.start_s + a.duration_s:.2f}s" if a.duration_s is not None
                            else Path(a.path).name for a in shot.dub_audio) or "-"
            rows.append([shot.shot_id, tc(rec.get("start_frame")), tc(rec.get("end_frame")), src.frame_count,
                         _media_path(src.path).name, f"{src.start_frame}-{src.end_frame - 1}", fps(src.rate), dub])
        lines += table(["shot", "record in", "record out", "frames", "source", "source frames", "fps", "dub line"], rows)
    if shot_list.skipped:
        lines.append("left out:")
        rows = [[f"{s.track}/{s.clip or '(unnamed)'}", tc(s.record_start_frame), tc(s.record_end_frame), s.reason, short(s.message)]
                for s in shot_list.skipped]
        lines += table(["clip", "record in", "record out", "reason", "why"], rows)
    lines += [f"note: {w}" for w in shot_list.warnings]
    return "\n".join(lines)


def dubbed_timeline(
    timeline: otio.schema.Timeline,
    rendered: Sequence[RenderedClip],
    *,
    language: str,
    batch_id: str,
    settings: dict[str, Any] | None = None,
    order: Sequence[str] | None = None,
) -> otio.schema.Timeline:
    """The timeline with the rendered clips on a new ``EdiDub <LANG>`` track.

    ``batch_id`` is every clip's ``metadata["edidub"]["job_id"]``; ``settings`` is
    :meth:`BatchPlan.settings`; ``order``: the shot ids in plan order (the clips are placed in it).
    """
    rank = {shot_id: i for i, shot_id in enumerate(order or ())}
    clips = sorted(rendered, key=lambda c: rank.get(c.shot_id, len(rank)))
    return add_dub_track(timeline, clips, language=language, job_id=batch_id, settings=settings)


def shot_fingerprint(shot: ShotRequest) -> str:
    """A hash of everything that decides a shot's frames and sound (its whole request)."""
    return hashlib.sha256(json.dumps(shot.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:32]


def read_timeline_string(text: str, *, where: str = "timeline") -> otio.schema.Timeline:
    """An OTIO JSON string → Timeline; anything else is a clear :class:`InvalidArgumentError`."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgumentError(f"{where}: expected the timeline as an OTIO JSON string")
    try:
        obj = otio.adapters.read_from_string(text, adapter_name="otio_json")
    except Exception as exc:  # the adapter raises many kinds on foreign text
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise InvalidArgumentError(f"{where} is not OTIO JSON ({type(exc).__name__}: {first})",
                                   hint="send otio.adapters.write_to_string(timeline, 'otio_json')") from None
    if isinstance(obj, otio.schema.SerializableCollection):
        timelines = [t for t in obj.find_children(descended_from_type=otio.schema.Timeline)] if hasattr(obj, "find_children") else []
        if len(timelines) != 1:
            raise InvalidArgumentError(f"{where} holds {len(timelines)} timelines; send exactly one")
        obj = timelines[0]
    if not isinstance(obj, otio.schema.Timeline):
        raise InvalidArgumentError(f"{where} is an OTIO {type(obj).__name__}, not a Timeline")
    return obj


@dataclass
class BatchSummary:
    """What a batch did, for people (``format``) and files (``to_dict``)."""

    batch_id: str
    dubbed: list[str] = field(default_factory=list)  # shot ids on the dub track
    reused: list[str] = field(default_factory=list)  # finished in an earlier, interrupted run
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)  # shot id → {code, message, details}
    skipped: list[SkippedClip] = field(default_factory=list)
    passthrough: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # shot id → ranges
    quality: dict[str, dict[str, Any]] = field(default_factory=dict)  # shot id → the render's QC figures and verdict
    media: dict[str, str] = field(default_factory=dict)  # shot id → the rendered clip's path
    output: str | None = None
    notes: list[str] = field(default_factory=list)
    rate: Fraction | None = None  # the timeline's: record positions are shown as its timecodes

    def record_span(self, start: int | None, end: int | None) -> str:
        """``record in 01:00:01:23, out 01:00:02:06 (8 frames)``: the out point exclusive, as in an EDL."""
        if start is None or end is None:
            return "record position unknown"
        if self.rate is None:
            return f"record frames {start}-{end - 1}"
        from edidub_engine.timebase import frame_to_timecode

        return f"record in {frame_to_timecode(start, self.rate)}, out {frame_to_timecode(end, self.rate)} ({end - start} frames)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "output": self.output,
            "dubbed": list(self.dubbed),
            "reused": list(self.reused),
            "failed": dict(self.failed),
            "skipped": [s.to_dict() for s in self.skipped],
            "passthrough": dict(self.passthrough),
            "quality": dict(self.quality),
            "media": dict(self.media),
            "notes": list(self.notes),
        }

    def format(self) -> str:
        lines = [f"dubbed {len(self.dubbed)} shot(s)" + (f" ({len(self.reused)} from an earlier run)" if self.reused else "")
                 + (f", {len(self.failed)} failed" if self.failed else "") + f", {len(self.skipped)} clip(s) skipped"]
        for shot_id in self.dubbed:
            lines.append(f"  dubbed {shot_id}" + (f" → {self.media[shot_id]}" if shot_id in self.media else ""))
        for shot_id, err in self.failed.items():
            lines.append(f"  FAILED {shot_id}: {err.get('code')}: {err.get('message')}")
        for s in self.skipped:
            lines.append(f"  skipped {s.track}/{s.clip or '(unnamed)'}, {self.record_span(s.record_start_frame, s.record_end_frame)}: "
                         f"{s.reason}: {s.message}")
        for shot_id, ranges in self.passthrough.items():
            text = ", ".join(f"{r['start_frame']}-{r['end_frame'] - 1} {r['reason']}" for r in ranges)
            lines.append(f"  {shot_id}: frames passed through unchanged: {text}")
        for shot_id, quality in self.quality.items():
            if quality.get("verdict") == "review":
                lines.append(f"  REVIEW {shot_id}: " + "; ".join(quality.get("reasons", [])))
        if self.quality:
            ok = sum(1 for q in self.quality.values() if q.get("verdict") == "ok")
            lines.append(f"  QC: {ok} of {len(self.quality)} shot(s) ok")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.output:
            lines.append(f"wrote {self.output}")
        return "\n".join(lines)
