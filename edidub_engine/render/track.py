"""The shot's track: what tracking keeps of each frame, streamed, and its cache blocks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from ..errors import CancelledError

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]

TRACK_BLOCK_FRAMES = 256  # frames per cached track block


@dataclass(slots=True)
class FrameRecord:
    """What tracking keeps of one frame (index 0 = the shot's first frame): small, so a stream of them is cheap."""

    index: int
    status: str  # "ok" or why the frame passes through
    cut: bool  # starts a new camera shot
    matrix: np.ndarray | None = None  # [2, 3] frame → 224 crop
    landmarks: np.ndarray | None = None  # [478, 3] float32 frame pixels
    crop: np.ndarray | None = None  # [s, s, 3] uint8 at the LSD size
    mask: np.ndarray | None = None  # [s, s] uint8 at the LSD size
    donor: Any = None  # mouth.Donor: the frame as a source of mouths (with native pixels); taken into a bank before the frame is lip-synced
    covered: bool = False  # a hand lies over the lower face: the frame keeps its own mouth and gives none (with donors)


def iter_track(info, start: int, end: int, *, selector, lsd_size: int, first: int = 0, donors: bool = False) -> Iterator[FrameRecord]:
    """Track shot frames ``[first, end - start)`` of ``[start, end)`` as a stream of :class:`FrameRecord`
    (with ``donors``, each usable frame's :class:`~edidub_engine.mouth.Donor` too)."""
    from ..analysis import CutDetector
    from ..face import FaceStatus, FaceTracker, lower_face_mask, track_and_align, warp_crop
    from ..face.hands import CoverWatch
    from ..media import iter_frames

    detector = CutDetector()
    cuts: set[int] = set()
    seen = first

    def cut_hook(frame: np.ndarray) -> bool:
        nonlocal seen
        cut = detector.is_cut(frame)
        if cut:
            cuts.add(seen)
        seen += 1
        return cut

    with FaceTracker(selector=selector) as tracker, CoverWatch() as hands:
        for tracked in track_and_align(iter_frames(info, start + first, end), tracker=tracker, is_cut=cut_hook):
            i = tracked.frame_index - start
            obs = tracked.observation
            if tracked.alignment.valid and obs.status is FaceStatus.OK:
                small = tracked.alignment.matrix_for(lsd_size)
                record = FrameRecord(i, "ok", i in cuts, tracked.alignment.matrix_for(224), obs.landmarks.astype(np.float32),
                                     warp_crop(tracked.frame, small, lsd_size),
                                     (lower_face_mask(obs.landmarks, small, lsd_size) > 0.5).astype(np.uint8))
                if donors:
                    record.covered = hands.covered(tracked.frame, record.landmarks)
                    record.donor = donor_of(record, tracked.frame, lsd_size)
                yield record
            else:
                yield FrameRecord(i, obs.status.value if obs.status is not FaceStatus.OK else "low_confidence", i in cuts)
            cuts.discard(i)


def iter_tracks(info, start: int, end: int, *, selectors: list, lsd_size: int, first: int = 0, donors: bool = False,
                lost: dict | None = None) -> Iterator[list[FrameRecord]]:
    """Several faces of shot frames ``[first, end - start)`` on one decode: per frame, one :class:`FrameRecord` per
    selector (in order), each face with a stable identity (:class:`~edidub_engine.face.MultiFaceTracker`) and its own
    smoothed alignment. A frame where a face's identity is unsure passes through for that face (``low_confidence``);
    ``lost``, when given, gets each face's lost ranges (shot frames), per camera shot, as the tracker reports them."""
    from collections import deque

    from ..analysis import CutDetector
    from ..face import AlignmentSmoother, FaceSelector, FaceStatus, MultiFaceTracker, lower_face_mask, warp_crop
    from ..media import iter_frames

    keys = [FaceSelector.parse(str(s)) for s in selectors]
    smoothers = [AlignmentSmoother(radius=4) for _ in keys]
    pending: deque = deque()  # (index, frame, cut, observations)
    aligned: list[dict] = [{} for _ in keys]  # per face: frame index → alignment
    detector = CutDetector()

    def note_lost(tracker) -> None:
        if lost is not None:
            for key, ranges in tracker.lost_ranges().items():
                if key in keys:
                    lost.setdefault(keys.index(key), []).extend([[a - start, b - start] for a, b in ranges])

    def release() -> Iterator[list[FrameRecord]]:
        while pending and all(pending[0][0] in done for done in aligned):
            index, frame, cut, observations = pending.popleft()
            i = index - start
            out = []
            for k, obs in enumerate(observations):
                alignment = aligned[k].pop(index)
                if alignment.valid and obs.status is FaceStatus.OK:
                    small = alignment.matrix_for(lsd_size)
                    record = FrameRecord(i, "ok", cut, alignment.matrix_for(224), obs.landmarks.astype(np.float32),
                                         warp_crop(frame, small, lsd_size),
                                         (lower_face_mask(obs.landmarks, small, lsd_size) > 0.5).astype(np.uint8))
                    if donors:
                        record.covered = watches[k].covered(frame, record.landmarks)
                        record.donor = donor_of(record, frame, lsd_size)
                else:
                    record = FrameRecord(i, obs.status.value if obs.status is not FaceStatus.OK else "low_confidence", cut)
                out.append(record)
            yield out

    from ..face.hands import CoverWatch

    watches = [CoverWatch() for _ in keys]
    with MultiFaceTracker(keys) as tracker, contextlib.ExitStack() as stack:
        for watch in watches:
            stack.enter_context(watch)
        for index, frame in iter_frames(info, start + first, end):
            cut = detector.is_cut(frame)
            if cut:
                note_lost(tracker)
                for k, smoother in enumerate(smoothers):
                    aligned[k].update({a.frame_index: a for a in smoother.mark_cut()})
                yield from release()
                tracker.reset()
            faces = tracker.process(frame, index)
            observations = [faces[key] for key in keys]
            pending.append((index, frame, cut, observations))
            for k, (smoother, obs) in enumerate(zip(smoothers, observations)):
                aligned[k].update({a.frame_index: a for a in smoother.push(obs)})
            yield from release()
        for k, smoother in enumerate(smoothers):
            aligned[k].update({a.frame_index: a for a in smoother.flush()})
        yield from release()
        note_lost(tracker)


def block_entry(records: list[FrameRecord], lsd_size: int) -> dict[str, Any]:
    """A run of records as a cache entry (tensors and plain data only)."""
    k = len(records)
    matrices = np.full((k, 2, 3), np.nan)
    landmarks = np.full((k, 478, 3), np.nan, np.float32)
    crops = np.zeros((k, lsd_size, lsd_size, 3), np.uint8)
    masks = np.zeros((k, lsd_size, lsd_size), np.uint8)
    for j, r in enumerate(records):
        if r.status == "ok":
            matrices[j], landmarks[j], crops[j], masks[j] = r.matrix, r.landmarks, r.crop, r.mask
    return {"first": records[0].index, "status": [r.status for r in records], "cuts": [r.cut for r in records],
            "matrices": torch.from_numpy(matrices), "landmarks": torch.from_numpy(landmarks),
            "crops": torch.from_numpy(crops), "masks": torch.from_numpy(masks)}


def block_records(entry: dict[str, Any]) -> Iterator[FrameRecord]:
    matrices, landmarks = entry["matrices"].numpy(), entry["landmarks"].numpy()
    crops, masks = entry["crops"].numpy(), entry["masks"].numpy()
    for j, (status, cut) in enumerate(zip(entry["status"], entry["cuts"])):
        i = entry["first"] + j
        if status == "ok":
            yield FrameRecord(i, status, cut, matrices[j], landmarks[j], crops[j], masks[j])
        else:
            yield FrameRecord(i, status, cut)


@dataclass
class ShotTrack:
    """A whole shot's track in arrays (for measuring short clips; dubbing streams :class:`FrameRecord`s)."""

    status: list[str]  # "ok" or why the frame passes through
    matrices: np.ndarray  # [N, 2, 3] frame → 224 crop (NaN where no face)
    landmarks: np.ndarray  # [N, 478, 3] float32 frame pixels (NaN where no face)
    crops: np.ndarray  # [N, s, s, 3] uint8 at the LSD size
    masks: np.ndarray  # [N, s, s] uint8 at the LSD size
    cuts: list[int] = field(default_factory=list)  # shot-relative frames that start a new camera shot


def track_shot(info, start: int, end: int, *, selector, lsd_size: int, progress: Progress | None, should_cancel: ShouldCancel | None) -> ShotTrack:
    records = []
    for record in iter_track(info, start, end, selector=selector, lsd_size=lsd_size):
        if should_cancel is not None and should_cancel():
            raise CancelledError(f"cancelled while tracking frame {start + record.index}")
        records.append(record)
        if progress is not None:
            progress("track", record.index + 1, end - start)
    entry = block_entry(records, lsd_size)
    return ShotTrack(entry["status"], entry["matrices"].numpy(), entry["landmarks"].numpy(), entry["crops"].numpy(),
                     entry["masks"].numpy(), [r.index for r in records if r.cut])


def donor_of(record: FrameRecord, frame: np.ndarray, lsd_size: int):
    """A usable frame as a :class:`~edidub_engine.mouth.Donor` (``frame``: its native RGB picture)."""
    from ..mouth import Donor

    return Donor.from_frame(record.index, frame, record.landmarks, record.crop, crop_matrix(record.matrix, lsd_size))


def crop_matrix(matrix224: np.ndarray, size: int) -> np.ndarray:
    """The frame→crop matrix of a ``size`` crop from the 224 crop's (the same framing)."""
    from ..face.alignment import FaceAlignment

    return FaceAlignment(frame_index=0, valid=True, matrix=matrix224).matrix_for(size)


__all__ = ["TRACK_BLOCK_FRAMES", "FrameRecord", "ShotTrack", "block_entry", "block_records", "crop_matrix", "donor_of", "iter_track", "iter_tracks", "track_shot"]
