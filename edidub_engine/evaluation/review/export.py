"""Verdicts out of the review: CSV for a spreadsheet, OTIO markers for the editor's timeline."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

from ...errors import InvalidArgumentError, MediaNotFoundError

CSV_FIELDS = ("shot_id", "original", "start_frame", "end_frame", "timecode", "dubbed", "sync", "naturalness", "verdict",
              "note", "reviewer", "updated_at")
#: OTIO marker colours of each verdict.
MARKER_COLOURS = {"approved": "GREEN", "rejected": "RED", "pending": "YELLOW"}


def read_json(path: Path, *, missing: str, hint: str):
    """A JSON file the review reads, or a clear error: ``missing`` (with ``hint``) when absent, invalid JSON named."""
    if not path.is_file():
        raise MediaNotFoundError(missing, hint=hint)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidArgumentError(f"{path} is not valid JSON ({exc})") from None


def load_batch(batch_dir: str | Path) -> dict:
    """``batch.json`` of a batch folder (written by ``edidub eval`` or the batch tool)."""
    folder = Path(batch_dir).expanduser()
    manifest = folder / "batch.json"
    batch = read_json(manifest, missing=f"{folder} has no batch.json, so there is nothing to review",
                      hint="point edidub review at a folder written by `edidub eval`, or at a dubbed timeline from `edidub batch`")
    shots = batch.get("shots")
    if not isinstance(shots, list) or not all(isinstance(s, dict) and "shot_id" in s for s in shots):
        raise InvalidArgumentError(f"{manifest} must hold a 'shots' list of maps with a shot_id")
    if len({s["shot_id"] for s in shots}) != len(shots):
        raise InvalidArgumentError(f"{manifest}: two shots share a shot_id")
    return batch


def export_csv(batch: dict, verdicts: dict[str, dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for shot in batch["shots"]:
        v = verdicts.get(shot["shot_id"], {})
        stamp = v.get("updated_at")
        writer.writerow({
            "shot_id": shot["shot_id"], "original": shot.get("original", ""), "start_frame": shot.get("start_frame", ""),
            "end_frame": shot.get("end_frame", ""), "timecode": shot.get("timecode", ""), "dubbed": shot.get("dubbed", ""),
            "sync": v.get("sync") or "", "naturalness": v.get("naturalness") or "", "verdict": v.get("verdict", "pending"),
            "note": v.get("note", ""), "reviewer": v.get("reviewer", ""),
            "updated_at": "" if stamp is None else datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="seconds"),
        })
    return buf.getvalue()


def export_otio(batch: dict, verdicts: dict[str, dict]):
    """An OTIO timeline: the dubbed shots one after another, each with a marker carrying its verdict."""
    import opentimelineio as otio

    timeline = otio.schema.Timeline(name=batch.get("title", "EdiDub review"))
    track = otio.schema.Track(name="dubs", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for shot in batch["shots"]:
        rate = float(Fraction(str(shot.get("rate", "25"))))
        n = int(shot.get("end_frame", 0)) - int(shot.get("start_frame", 0))
        start = otio.opentime.from_timecode(shot["timecode"], rate) if shot.get("timecode") else otio.opentime.RationalTime(0, rate)
        rng = otio.opentime.TimeRange(start, otio.opentime.RationalTime(n, rate))
        ref = otio.schema.ExternalReference(target_url=Path(shot.get("dubbed", "")).resolve().as_uri() if shot.get("dubbed") else "",
                                            available_range=rng)
        clip = otio.schema.Clip(name=shot["shot_id"], media_reference=ref, source_range=rng)
        v = verdicts.get(shot["shot_id"], {"verdict": "pending"})
        verdict = v.get("verdict", "pending")
        ratings = f"sync {v.get('sync') or '–'}/10, naturalness {v.get('naturalness') or '–'}/10"
        marker = otio.schema.Marker(
            name=f"{verdict.upper()}: {ratings}" + (f" — {v['note']}" if v.get("note") else ""),
            marked_range=otio.opentime.TimeRange(start, otio.opentime.RationalTime(1, rate)),
            color=MARKER_COLOURS[verdict],
            metadata={"edidub": {"verdict": verdict, "sync": v.get("sync"), "naturalness": v.get("naturalness"),
                                 "note": v.get("note", ""), "reviewer": v.get("reviewer", ""), "original": shot.get("original")}},
        )
        clip.markers.append(marker)
        track.append(clip)
    return timeline
