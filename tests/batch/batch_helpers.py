"""The three-shot cut of ../shared/footage clips the batch tests dub, and how two dubbed timelines are compared."""

from __future__ import annotations

import hashlib
from pathlib import Path

import opentimelineio as otio
import pytest

from otio_adapters.shots import _plain

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
RATE = 25  # the GRID clips' rate
GST = 90000  # 01:00:00:00 at 25 fps: record frames are absolute
CLIPS = [  # (file, source start, frames); cut in sequence on V1
    ("grid_bbaf2n.mpg", 10, 16),
    ("grid_brbk7n.mpg", 20, 16),
    ("grid_lbax4n.mpg", 30, 16),
]
DUB = "dub_fr_french1.wav"
DUB_LINES = [(2, 0, 12), (17, 25, 14), (33, 50, 13)]  # (record offset, source frame in the wav, frames), one under each shot
# the options every batch in these tests uses (random weights: the mechanics, not the look)
OPTIONS = {"steps": 2, "inversion_steps": 2, "seed": 0}


def _rt(v, rate=RATE):
    return otio.opentime.RationalTime(v, rate)


def _tr(start, dur, rate=RATE):
    return otio.opentime.TimeRange(_rt(start, rate), _rt(dur, rate))


def footage(name: str) -> Path:
    path = FOOTAGE / name
    if not path.is_file():
        pytest.skip(f"shared footage {path} is absent (tests read it from ../shared/footage)")
    return path


def build_cut() -> otio.schema.Timeline:
    """V1: three GRID clips in sequence, then an undubbed fourth one; A1 'FR dialogue': a French line under each of the three."""
    tl = otio.schema.Timeline(name="three shots", global_start_time=_rt(GST))
    v1 = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    for name, start, frames in CLIPS + [("grid_lbbc2a.mpg", 5, 8)]:
        ref = otio.schema.ExternalReference(target_url=str(footage(name)), available_range=_tr(0, 75))
        v1.append(otio.schema.Clip(name=name, media_reference=ref, source_range=_tr(start, frames)))
    dub = otio.schema.Track(name="FR dialogue", kind=otio.schema.TrackKind.Audio)
    cursor = 0
    for at, src, frames in DUB_LINES:
        if at > cursor:
            dub.append(otio.schema.Gap(source_range=_tr(0, at - cursor)))
        ref = otio.schema.ExternalReference(target_url=str(footage(DUB)), available_range=_tr(0, 171))
        dub.append(otio.schema.Clip(name=f"FR line {len(dub)}", media_reference=ref, source_range=_tr(src, frames)))
        cursor = at + frames
    tl.tracks.append(v1)
    tl.tracks.append(dub)
    return tl


def frames_digest(path: str) -> tuple[int, str]:
    """(frame count, sha256 of every decoded frame): 'the same file' for FFV1 (lossless) clips."""
    from edidub_engine.media import iter_frames

    digest, n = hashlib.sha256(), 0
    for _, frame in iter_frames(path):
        digest.update(frame.tobytes())
        n += 1
    return n, digest.hexdigest()


def signature(tl: otio.schema.Timeline, *, with_frames: bool = True) -> list:
    """What must be equal between two dubbed timelines: every track's items, their source and record ranges,
    the media file names (the folders differ per run) and, for dubbed clips, the record and the decoded frames."""
    out = []
    gst = tl.global_start_time
    for track in tl.tracks:
        items = []
        for i, child in enumerate(track):
            entry = [type(child).__name__, child.name]
            if not isinstance(child, otio.schema.Transition):
                rng = track.range_of_child_at_index(i)
                entry += [str(child.source_range), (gst + rng.start_time).value, rng.duration.value]
            if isinstance(child, otio.schema.Clip):
                ref = child.media_reference
                entry += [Path(ref.target_url).name, str(ref.available_range)]
                meta = child.metadata.get("edidub")
                if meta is not None:
                    entry += [meta["shot_id"], _plain(meta["record"]), _plain(meta["settings"]), meta["frames_edited"], _plain(meta["passthrough"])]
                    if with_frames:
                        entry.append(frames_digest(ref.target_url))
            items.append(entry)
        out.append([track.name, track.kind, items])
    return out
