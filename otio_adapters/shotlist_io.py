"""EdiDub shot lists as JSON and CSV, and as OTIO timelines (for the adapter plugin).

A shot list read into OTIO becomes a Timeline with one clip per shot on a picture track
(at the shot's record frames; shots that overlap — a dissolve's two sides — go on a second
picture track), and the dub audio on an audio track ``"Dub"``.  Each clip keeps the shot's
id, output, options and original ``record`` (where the shot sits in the editorial timeline)
under ``metadata["edidub"]``; writing that Timeline back runs the one conversion
(:func:`shots_from_timeline`, whole clips, dub track ``"Dub"``) and gives the same shots.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from fractions import Fraction
from typing import Any

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import ShotRequest, parse_rate

from ._time import exact_rate, rt
from .shots import METADATA_KEY, ShotList, shot_from_dict, shots_from_timeline

DUB_TRACK = "Dub"
PICTURE_TRACK = "Shots"
# record fields that say where the shot sits in the editorial timeline; kept through OTIO
ORIGIN_FIELDS = (
    "timeline", "track", "track_index", "clip", "clip_path", "cut_start_frame", "cut_end_frame",
    "media_start_frame", "dub_track", "transition_in", "transition_out", "effects",
)


# ---------------------------------------------------------------------------------------------- JSON


def to_json(shot_list: ShotList) -> str:
    return json.dumps(shot_list.to_dict(), indent=2, sort_keys=False) + "\n"


def from_json(text: str) -> ShotList:
    try:
        data = json.loads(text.lstrip("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"shot list is not valid JSON: {exc}") from None
    if isinstance(data, list):  # a bare list of shot requests
        data = {"shots": data}
    return ShotList.from_dict(data)


# ---------------------------------------------------------------------------------------------- CSV

CSV_COLUMNS = (
    "shot_id", "source_path", "source_start_frame", "source_end_frame", "source_rate",
    "dub_path", "dub_start_s", "dub_duration_s", "dub_offset_s",
    "timeline", "track", "clip", "record_start_frame", "record_end_frame", "record_rate",
    "codec", "output_dir", "output_name", "steps", "inversion_steps", "guidance_scale", "seed", "face", "strength",
    "record_json", "lines_json", "speakers",
)


def to_csv(shot_list: ShotList) -> str:
    """One row per dub segment (a shot with two dub lines has two rows); a picture-only shot has one row."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for shot in shot_list.shots:
        d = shot.to_dict()
        rec = d["record"]
        base = {
            "shot_id": shot.shot_id,
            "source_path": shot.source.path,
            "source_start_frame": shot.source.start_frame,
            "source_end_frame": shot.source.end_frame,
            "source_rate": d["source"]["rate"] or "",
            "timeline": rec.get("timeline", ""),
            "track": rec.get("track", ""),
            "clip": rec.get("clip", ""),
            "record_start_frame": rec.get("start_frame", ""),
            "record_end_frame": rec.get("end_frame", ""),
            "record_rate": rec.get("rate", ""),
            "codec": shot.output.codec,
            "output_dir": shot.output.dir or "",
            "output_name": shot.output.name or "",
            "steps": "" if shot.options.steps is None else shot.options.steps,
            "inversion_steps": "" if shot.options.inversion_steps is None else shot.options.inversion_steps,
            "guidance_scale": "" if shot.options.guidance_scale is None else shot.options.guidance_scale,
            "seed": shot.options.seed,
            "face": shot.options.face,
            "strength": shot.options.strength,
            "record_json": json.dumps(rec, sort_keys=True),
            # a two-shot's faces and their lines (ShotRequest.lines), and the rule that shares a mixed line out
            "lines_json": json.dumps(d["lines"]) if shot.lines else "",
            "speakers": shot.speakers or "",
        }
        for seg in shot.dub_audio or (None,):
            row = dict(base)
            if seg is not None:
                row.update(dub_path=seg.path, dub_start_s=seg.start_s, dub_duration_s="" if seg.duration_s is None else seg.duration_s,
                           dub_offset_s=seg.offset_s)
            w.writerow(row)
    return buf.getvalue()


def from_csv(text: str) -> ShotList:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = {"shot_id", "source_path", "source_start_frame", "source_end_frame"} - set(reader.fieldnames or ())
    if missing:
        raise InvalidArgumentError(f"shot list CSV lacks column(s) {', '.join(sorted(missing))}", hint=f"columns: {', '.join(CSV_COLUMNS)}")
    shots: dict[str, dict[str, Any]] = {}
    for n, row in enumerate(reader, start=2):
        where = f"shot list CSV line {n}"
        sid = (row.get("shot_id") or "").strip()
        if not sid:
            raise InvalidArgumentError(f"{where}: shot_id is empty")
        if sid not in shots:
            record = _json_field(row.get("record_json"), where)
            for col, key in (("timeline", "timeline"), ("track", "track"), ("clip", "clip"), ("record_rate", "rate")):
                if row.get(col):
                    record[key] = row[col]
            for col, key in (("record_start_frame", "start_frame"), ("record_end_frame", "end_frame")):
                if row.get(col):
                    record[key] = _number(row[col], int, where, col)
            options = {k: _number(row[k], t, where, k) for k, t in (("steps", int), ("inversion_steps", int), ("guidance_scale", float),
                                                                   ("seed", int), ("strength", float)) if row.get(k)}
            if row.get("face"):
                options["face"] = int(row["face"]) if row["face"].lstrip("-").isdigit() else row["face"]
            output = {k: row[c] for c, k in (("codec", "codec"), ("output_dir", "dir"), ("output_name", "name")) if row.get(c)}
            shots[sid] = {
                "shot_id": sid,
                "source": {
                    "path": row["source_path"],
                    "start_frame": _number(row["source_start_frame"], int, where, "source_start_frame"),
                    "end_frame": _number(row["source_end_frame"], int, where, "source_end_frame"),
                    "rate": row.get("source_rate") or None,
                },
                "dub_audio": [],
                "output": output,
                "options": options,
                "record": record,
                **({"lines": _json_field(row["lines_json"], where, kind=list)} if row.get("lines_json") else {}),
                **({"speakers": row["speakers"].strip()} if (row.get("speakers") or "").strip() else {}),
            }
        if row.get("dub_path"):
            seg = {"path": row["dub_path"]}
            for k in ("start_s", "duration_s", "offset_s"):
                if row.get(f"dub_{k}"):
                    seg[k] = _number(row[f"dub_{k}"], float, where, f"dub_{k}")
            shots[sid]["dub_audio"].append(seg)
    made = [shot_from_dict(s) for s in shots.values()]
    first = made[0].record if made else {}
    rate = first.get("rate") or "24"
    return ShotList(
        timeline=str(first.get("timeline") or ""),
        rate=parse_rate(rate, where="shot list CSV record_rate"),
        global_start_frame=min((s.record.get("start_frame", 0) for s in made), default=0),
        dub_track=first.get("dub_track"),
        handles=None,
        shots=made,
    )


def _json_field(text, where, *, kind: type = dict):
    """A JSON column (``record_json``: an object; ``lines_json``: a list)."""
    column = "record_json" if kind is dict else "lines_json"
    if not text:
        return kind()
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidArgumentError(f"{where}: {column} is not JSON") from None
    if not isinstance(value, kind):
        raise InvalidArgumentError(f"{where}: {column} must be a JSON {'object' if kind is dict else 'list'}")
    return value


def _number(text, kind, where, col):
    try:
        return kind(text)
    except ValueError:
        raise InvalidArgumentError(f"{where}: {col} {text!r} is not a number") from None


# ---------------------------------------------------------------------------------------------- OTIO


def to_timeline(shot_list: ShotList) -> otio.schema.Timeline:
    """The shot list as an OTIO Timeline (see the module docstring)."""
    rate = exact_rate(shot_list.rate, where="shot list")
    shots = sorted(shot_list.shots, key=lambda s: (_rec_start(s), s.shot_id))
    start = min([shot_list.global_start_frame] + [_rec_start(s) for s in shots])
    tl = otio.schema.Timeline(name=shot_list.timeline or "EdiDub shots", global_start_time=rt(start, rate))
    tl.metadata[METADATA_KEY] = {
        "shot_list": {"dub_track": DUB_TRACK if any(s.dub_audio for s in shots) else None, "handles": None,
                      "original_dub_track": shot_list.dub_track, "original_handles": shot_list.handles},
    }
    lanes: list[tuple[otio.schema.Track, list[int]]] = []  # track, [cursor frames]
    for shot in shots:
        s0, s1 = _rec_start(shot), _rec_end(shot)
        for track, cur in lanes:
            if cur[0] <= s0:
                break
        else:
            track = otio.schema.Track(name=PICTURE_TRACK if not lanes else f"{PICTURE_TRACK} {len(lanes) + 1}", kind=otio.schema.TrackKind.Video)
            cur = [start]
            lanes.append((track, cur))
            tl.tracks.append(track)
        if s0 > cur[0]:
            track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0, rate), rt(s0 - cur[0], rate))))
        src_rate = shot.source.rate or rate
        ref = otio.schema.ExternalReference(
            target_url=shot.source.path,
            available_range=otio.opentime.TimeRange(rt(0, src_rate), rt(shot.source.end_frame, src_rate)),
        )
        clip = otio.schema.Clip(
            name=shot.record.get("clip") or shot.shot_id,
            media_reference=ref,
            source_range=otio.opentime.TimeRange(rt(shot.source.start_frame, src_rate), rt(s1 - s0, rate)),
        )
        clip.metadata[METADATA_KEY] = {
            "shot_id": shot.shot_id,
            "output": asdict(shot.output),
            "options": asdict(shot.options),
            "origin_record": {k: shot.record[k] for k in ORIGIN_FIELDS if k in shot.record},
            **({"lines": shot.to_dict()["lines"]} if shot.lines else {}),
            **({"speakers": shot.speakers} if shot.speakers else {}),
        }
        track.append(clip)
        cur[0] = s1
    if not lanes:
        tl.tracks.append(otio.schema.Track(name=PICTURE_TRACK, kind=otio.schema.TrackKind.Video))

    # dub audio: one track, segments at their record positions, identical overlaps merged
    pieces = []
    for shot in shots:
        for seg in shot.dub_audio:
            at = Fraction(_rec_start(shot)) + Fraction(seg.offset_s).limit_denominator(10**6) * rate
            dur = Fraction(seg.duration_s).limit_denominator(10**6) if seg.duration_s is not None else Fraction(_rec_end(shot) - _rec_start(shot)) / rate - Fraction(seg.offset_s).limit_denominator(10**6)
            pieces.append([at, at + dur * rate, seg.path, Fraction(seg.start_s).limit_denominator(10**6) - at / rate])
    pieces.sort(key=lambda p: (p[0], p[1]))
    merged: list[list] = []
    for p in pieces:
        last = merged[-1] if merged else None
        if last and p[0] <= last[1] and p[2] == last[2] and abs(p[3] - last[3]) < Fraction(1, 10**5):
            last[1] = max(last[1], p[1])
        elif last and p[0] < last[1]:
            raise InvalidArgumentError(
                f"shot list: dub audio {p[2]!r} overlaps different audio at record frame {float(p[0]):g}",
                hint="two shots give different dub lines for the same record frames",
            )
        else:
            merged.append(list(p))
    if merged:
        audio = otio.schema.Track(name=DUB_TRACK, kind=otio.schema.TrackKind.Audio)
        cursor = Fraction(start)
        for a0, a1, path, offset in merged:
            if a0 > cursor:
                audio.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0, rate), rt(a0 - cursor, rate))))
            file_start = offset + a0 / rate
            audio.append(otio.schema.Clip(
                name=path.replace("\\", "/").rsplit("/", 1)[-1],
                media_reference=otio.schema.ExternalReference(target_url=path),
                source_range=otio.opentime.TimeRange(rt(file_start * rate, rate), rt(a1 - a0, rate)),
            ))
            cursor = a1
        tl.tracks.append(audio)
    return tl


#: An adapter argument the caller left out (``None`` is a real value for ``dub_track``: picture only).
NOT_GIVEN = object()


def adapter_shots(timeline: otio.schema.Timeline, *, dub_track=NOT_GIVEN, picture_tracks=None, handles=NOT_GIVEN, output=None,
                  options=None) -> ShotList:
    """What the adapters' ``write_to_string`` converts: only the arguments given reach :func:`from_timeline`."""
    given = {"dub_track": dub_track, "handles": handles, "picture_tracks": picture_tracks, "output": output, "options": options}
    return from_timeline(timeline, **{k: v for k, v in given.items()
                                      if v is not NOT_GIVEN and not (v is None and k in ("picture_tracks", "output", "options"))})


def from_timeline(timeline: otio.schema.Timeline, **kwargs) -> ShotList:
    """The shot list of ``timeline`` through :func:`shots_from_timeline`; a timeline made by
    :func:`to_timeline` defaults to its own dub track and whole clips."""
    meta = timeline.metadata.get(METADATA_KEY, {}) if hasattr(timeline.metadata, "get") else {}
    made = meta.get("shot_list") if hasattr(meta, "get") else None
    if made is not None:
        kwargs.setdefault("dub_track", made.get("dub_track"))
        kwargs.setdefault("handles", made.get("handles"))
    if "dub_track" not in kwargs:
        raise InvalidArgumentError(
            f"timeline {timeline.name!r}: name the dub audio track (dub_track=...), or dub_track=None for picture-only shots"
        )
    result = shots_from_timeline(timeline, **kwargs)
    if made is not None:  # lanes are a layout detail: give the shots back in record order
        result.shots.sort(key=lambda s: (s.record.get("start_frame", 0), s.record.get("track_index", 0), s.shot_id))
        result.dub_track = made.get("original_dub_track", result.dub_track)
        result.handles = made.get("original_handles", result.handles)
    return result


def _rec_start(shot: ShotRequest) -> int:
    if "start_frame" not in shot.record:
        raise InvalidArgumentError(f"shot {shot.shot_id!r}: record has no start_frame, so it cannot be placed on a timeline")
    return int(shot.record["start_frame"])


def _rec_end(shot: ShotRequest) -> int:
    if "end_frame" in shot.record:
        return int(shot.record["end_frame"])
    return _rec_start(shot) + shot.source.frame_count
