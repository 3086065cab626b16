"""The mouths of a shot in flight: which frame's mouth each edited frame shows (:mod:`edidub_engine.mouth`),
put onto the LSD crops the lip-sync network edits and into the native frames that are written.

Donors come into the bank on the lip-sync thread, :data:`DONOR_LOOKAHEAD_FRAMES` frames before the frame itself
is lip-synced, so a section can take mouths from frames a little after it and a plan never depends on how far the
tracker ran ahead (a shot dubbed again from the cache gets the same mouths); sections are planned on the same thread;
the native transplant runs where the chunk's frames are decoded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..face import landmarks_to_crop
from ..mouth import DonorBank, MouthDriveConfig, pose_signature, target_openings, transplant
from ..mouth.composite import MouthTransplant, apply_transplant
from ..mouth.drive import own_speech
from ..qc import lips_region
from .track import FrameRecord, crop_matrix


DONOR_LOOKAHEAD_FRAMES = 48
"""How far past a section's last frame its mouths may come from (about two seconds): enough for the first section to
see the actor's range, small enough that the frames waiting for it stay few."""

UNLIKE_LEVELS = 16.0
"""A frame whose cheeks and chin differ from its donor's by more than this (mean 8-bit levels at the LSD size) keeps
its own mouth: a hand or microphone passing in front, or a fast move, that the donor does not show and that a moved
mouth would erase. Donors of the same clean shot differ by 1.5-3.5 levels (retalking_face2); covered frames of
hamilton_mic_occlusion.mp4 by 30-40."""


def _cheeks(record: FrameRecord) -> np.ndarray:
    """``[s, s]`` bool: the record's lower face outside the lips, at the LSD size (what a moved mouth must not change)."""
    return record.mask.astype(bool) & ~lips_region(record.landmarks, crop_matrix(record.matrix, record.crop.shape[0]), record.crop.shape[0])


def unlike(record: FrameRecord, donor: Any) -> float:
    """Mean 8-bit difference of the record's and the donor's LSD crops over the record's lower face outside the lips."""
    region = _cheeks(record)
    if not region.any():
        return 0.0
    return float(np.abs(record.crop.astype(np.float32) - donor.crop)[region].mean())


def moved_crop(crop: np.ndarray, landmarks: np.ndarray, matrix224: np.ndarray, donor: Any) -> np.ndarray:
    """An LSD-size ``crop`` (of a frame with ``landmarks`` and 224-crop ``matrix224``) with ``donor``'s mouth on it."""
    if donor is None:
        return crop
    lm = landmarks_to_crop(landmarks, crop_matrix(matrix224, crop.shape[0]))
    return apply_transplant(crop, transplant(crop, lm, donor.crop, donor.crop_landmarks))


def tone_region(mask: np.ndarray, landmarks: np.ndarray, matrix224: np.ndarray, base: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """``[s, s]`` bool: where the LSD's colour cast is measured on an LSD-size crop — the lower face outside the lips and
    outside a moved mouth (``base`` against the source ``crop``): the pixels the edit is not meant to change, so a new
    mouth cannot tilt the estimate (:mod:`edidub_engine.tone`)."""
    size = crop.shape[0]
    keep = mask.astype(bool) & ~lips_region(landmarks, crop_matrix(matrix224, size), size)
    return keep & (np.abs(base.astype(np.int16) - crop).max(axis=2) <= 2)


class MouthStage:
    """Plans and places the mouths of one shot (one face)."""

    def __init__(self, *, frames: int, dub_db: np.ndarray, source_db: np.ndarray, strength: float, lsd_size: int,
                 capacity: int, config: MouthDriveConfig | None = None):
        self.config = config or MouthDriveConfig()
        self.dub_db, self.source_db = np.asarray(dub_db, np.float64), np.asarray(source_db, np.float64)
        self.strength, self.lsd_size = float(strength), int(lsd_size)
        self.own_speech = own_speech(self.dub_db, self.source_db, self.config)
        self.bank = DonorBank(capacity=capacity)
        self.source_open = np.full(frames, np.nan)  # written as frames are banked
        self.segments = np.zeros(frames, np.int64)
        self._segment = 0
        self.planned = self.moved = self.jumps = self.unlike = self.covered = 0

    @property
    def moves_mouths(self) -> bool:
        """False for the source's own sound (its mouth is the right one) or strength 0: every frame keeps its mouth."""
        return not self.own_speech and self.strength > 0

    # -- on the lip-sync thread, DONOR_LOOKAHEAD_FRAMES ahead of the plans
    def add(self, record: FrameRecord) -> None:
        """A tracked record: its donor (taken off the record, so native pixels do not travel on) into the bank."""
        if record.cut:
            self._segment += 1
        self.segments[record.index] = self._segment
        donor, record.donor = record.donor, None
        if donor is None:
            return
        donor.segment = self._segment
        self.source_open[record.index] = donor.opening
        if self.moves_mouths and not record.covered:  # a mouth with a hand over it is no mouth to give
            self.bank.add(donor)

    # -- on the lip-sync thread
    def plan(self, records: list[FrameRecord], previous: int | None) -> list[Any]:
        """The donor of each record (None: its own mouth). ``previous``: the shot frame whose mouth the frame
        before showed."""
        if not self.moves_mouths or not records:
            return [None] * len(records)
        frames = np.array([r.index for r in records])
        targets = target_openings(self.dub_db, self.bank.openings(), source_openings=self.source_open,
                                  strength=self.strength, config=self.config)[frames]
        poses = pose_signature(np.stack([r.landmarks for r in records]))
        looks = (np.stack([r.crop for r in records]), np.stack([_cheeks(r) for r in records]))
        plan = self.bank.plan(frames.tolist(), targets, poses, previous=previous, segment=int(self.segments[frames[0]]), looks=looks)
        donors = [None if d.index == r.index or r.covered else d for d, r in zip(plan.donors, records)]
        self.covered += sum(r.covered for r in records)
        for k, (record, donor) in enumerate(zip(records, donors)):
            if donor is not None and unlike(record, donor) > UNLIKE_LEVELS:
                donors[k] = None  # its cheeks and chin look like no donor's: something covers them, or the face moved fast
                self.unlike += 1
        self.planned += len(records)
        self.moved += sum(d is not None for d in donors)
        self.jumps += plan.jumps
        return donors

    def lsd_base(self, record: FrameRecord, donor: Any) -> np.ndarray:
        """The LSD-size crop the edit starts from: the record's own, with the donor's mouth on it."""
        return moved_crop(record.crop, record.landmarks, record.matrix, donor)

    def tone_reference(self, record: FrameRecord, base: np.ndarray) -> np.ndarray:
        """See :func:`tone_region`."""
        return tone_region(record.mask, record.landmarks, record.matrix, base, record.crop)

    def native(self, frame: np.ndarray, record: FrameRecord, donor: Any, strength: float) -> MouthTransplant | None:
        """The donor's mouth in the native ``frame`` (None: the frame keeps its own)."""
        if donor is None or strength <= 0:
            return None
        return transplant(frame, record.landmarks, donor.patch, donor.patch_landmarks, strength=strength)

    def figures(self) -> dict[str, Any]:
        """How the mouths were chosen, for the clip's report."""
        return {"own_speech": self.own_speech, "strength": self.strength, "frames_planned": self.planned,
                "frames_moved": self.moved, "donor_jumps": self.jumps, "frames_kept_unlike": self.unlike,
                "frames_kept_covered": self.covered}


__all__ = ["DONOR_LOOKAHEAD_FRAMES", "MouthStage", "moved_crop", "tone_region"]
