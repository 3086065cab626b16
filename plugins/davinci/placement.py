"""Putting a rendered clip back on the timeline: into the EdiDub bin, onto an EdiDub track, read back, marked.

The clip lands at the original's record frames with its duration on a video track above the
picture; what Resolve actually did is read back, since ``AppendToTimeline`` may refuse an
occupied range or (some builds) read ``endFrame`` as inclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edidub_engine.shot import RenderedClip

from .errors import ResolveScriptError
from .reading import TRACK_NAME, _Context, _items

__all__ = ["BIN_NAME", "MARKER_COLOR", "REVIEW_MARKER_COLOR", "Placed", "place"]

BIN_NAME = "EdiDub"
MARKER_COLOR = "Purple"
REVIEW_MARKER_COLOR = "Red"  # the shot's QC verdict asks a person to look before it is cut in


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
    model: str = ""  # the bundle that dubbed it (RenderedClip.model)


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
    placed = Placed(clip.shot_id, job_id, clip.path, track, record_start, duration, False, model=str((clip.model or {}).get("name") or ""))
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
    if placed.model:
        note += f"; model {placed.model}"
    quality = (clip.qc or {}).get("quality") or {}
    review = quality.get("verdict") == "review"
    if quality:
        note += "; QC " + ("REVIEW: " + "; ".join(quality.get("reasons", [])) if review else "ok")
    color, name = (REVIEW_MARKER_COLOR, "EdiDub: review") if review else (MARKER_COLOR, "EdiDub")
    custom = f"edidub:{job_id}"
    if not ctx.timeline.AddMarker(record_start - ctx.start_frame, color, name, note, duration, custom):
        item.AddMarker(0, color, name, note, 1, custom)  # a timeline marker is already there
    return placed
