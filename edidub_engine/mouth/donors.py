"""The actor's own mouths: a bank of the shot's frames and a smooth path through it.

For each frame to dub, a *donor* frame of the same shot gives the mouth: one whose mouth opening is
the one the line asks for (:mod:`.drive`) and whose head pose is closest (stable landmarks, as the
paper matches its training references, section 3.1). Chosen frame by frame, donors would jump about
and the mouth would flicker; chosen along a path (Viterbi), consecutive frames take consecutive
donors where they can, so what the actor's mouth did between two frames comes along with it.

The bank holds what a donor needs (its landmarks, its LSD crop and a patch of native pixels around
the mouth) for the most recent frames only (``capacity``), so memory does not follow the take's length.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = ["Donor", "DonorBank", "DonorPlan"]

SHAPE_WEIGHT = 4.0  # per actor's opening range (closed to wide) of mismatch
POSE_WEIGHT = 20.0  # per eye-distance of RMS stable-landmark mismatch
LOOKS_WEIGHT = 32.0  # per full scale of mean difference of the cheeks and chin beyond LOOKS_TOLERANCE
LOOKS_TOLERANCE = 8.0 / 255  # what a moving head's skin differs by anyway: only more (an occluder, other light) costs
HOLD_COST = 0.3  # the same donor twice, or one frame skipped
JUMP_COST = 0.6  # any other move: the mouth's texture changes at once
CANDIDATES = 24  # donors considered per frame (the best by opening and pose)


@dataclass(slots=True)
class Donor:
    """One frame of the shot as a source of a mouth."""

    index: int  # shot frame
    opening: float  # mouth_opening of its landmarks
    pose: np.ndarray  # pose_signature
    landmarks: np.ndarray  # [478, 2] native frame pixels
    crop: np.ndarray  # [s, s, 3] uint8: the LSD-size crop
    crop_landmarks: np.ndarray  # [478, 2] in that crop's pixels
    patch: np.ndarray | None = None  # [h, w, 3] uint8: native pixels around the mouth (maybe reduced)
    patch_landmarks: np.ndarray | None = None  # [478, 2] in the patch's pixels
    segment: int = 0  # camera shot within the shot (a cut starts the next): mouths are not taken across cuts

    @classmethod
    def from_frame(cls, index: int, frame: np.ndarray, landmarks: np.ndarray, crop: np.ndarray, crop_matrix: np.ndarray) -> "Donor":
        """What a donor keeps of shot frame ``index``: ``frame`` (native RGB), its ``landmarks`` (frame pixels),
        its LSD-size ``crop`` and that crop's frame→crop ``crop_matrix``."""
        from edidub_engine.mouth.composite import mouth_patch
        from edidub_engine.mouth.shape import mouth_opening, pose_signature

        lm = np.asarray(landmarks, np.float64)[:, :2]
        m = np.asarray(crop_matrix, np.float64)
        patch, patch_landmarks = mouth_patch(frame, lm)
        return cls(index=int(index), opening=float(mouth_opening(lm)[0]), pose=pose_signature(lm)[0],
                   landmarks=lm.astype(np.float32), crop=crop, crop_landmarks=(lm @ m[:, :2].T + m[:, 2]).astype(np.float32),
                   patch=patch, patch_landmarks=patch_landmarks)


@dataclass(frozen=True)
class DonorPlan:
    """The donors chosen for consecutive shot frames, and the figures of the choice."""

    frames: tuple[int, ...]  # shot frames, consecutive
    donors: tuple[Donor, ...]
    targets: np.ndarray  # the openings asked for
    jumps: int  # donor changes that are not a step to the next frame

    def key(self) -> str:
        """Which donors give which frames (for caches keyed by what the edit starts from)."""
        return ",".join(str(d.index) for d in self.donors)


def looks_cost(crops: np.ndarray, regions: np.ndarray, donors: np.ndarray) -> np.ndarray:
    """``[n, m]``: mean absolute difference (full scale 1) of each frame's crop from each donor's crop over the frame's region."""
    a = crops.reshape(len(crops), -1, 3).astype(np.float32) / 255.0
    b = donors.reshape(len(donors), -1, 3).astype(np.float32) / 255.0
    w = regions.reshape(len(regions), -1).astype(np.float32)
    count = np.maximum(w.sum(axis=1, keepdims=True), 1.0)
    out = np.empty((len(a), len(b)), np.float32)
    for i in range(len(a)):  # a frame at a time: [m, pixels] stays small
        out[i] = (np.abs(b - a[i][None]).mean(axis=2) * w[i][None]).sum(axis=1) / count[i]
    return out


class DonorBank:
    """The last ``capacity`` usable frames of a shot, and the paths through them."""

    def __init__(self, *, capacity: int = 500):
        if capacity < 1:
            raise InvalidArgumentError(f"a donor bank needs room for one frame at least, got {capacity}")
        self._donors: deque[Donor] = deque(maxlen=capacity)
        self._by_index: dict[int, Donor] = {}
        self._lock = threading.Lock()  # a bank may be filled on one thread and planned on another (the renderer uses one)

    def __len__(self) -> int:
        with self._lock:
            return len(self._donors)

    def add(self, donor: Donor) -> None:
        """Add the shot's next usable frame (frames come in order)."""
        with self._lock:
            if self._donors and donor.index <= self._donors[-1].index:
                raise InvalidArgumentError(f"donor frames must come in order: {donor.index} after {self._donors[-1].index}")
            if len(self._donors) == self._donors.maxlen:
                self._by_index.pop(self._donors[0].index, None)
            self._donors.append(donor)
            self._by_index[donor.index] = donor

    def get(self, index: int) -> Donor | None:
        with self._lock:
            return self._by_index.get(index)

    def openings(self) -> np.ndarray:
        """Every banked frame's mouth opening: the actor's range."""
        with self._lock:
            return np.array([d.opening for d in self._donors], np.float64)

    def plan(self, frames: Sequence[int], targets: np.ndarray, poses: np.ndarray, *, previous: int | None = None,
             segment: int | None = None, exclusion_frames: int = 0, looks: tuple[np.ndarray, np.ndarray] | None = None) -> DonorPlan:
        """Donors for shot ``frames`` (consecutive) asking ``targets`` openings at ``poses`` (pose signatures).

        ``previous``: the donor of the frame just before, so a path continues across sections; ``segment``:
        only donors of that camera shot; ``exclusion_frames``: no frame gets a donor closer to it than this
        (a check that its own mouth cannot answer, as the paper's training references are chosen); ``looks``: the
        frames' LSD crops ``[n, s, s, 3]`` and where to compare them ``[n, s, s]`` (their cheeks and chin), so a donor
        whose skin looks alike (same light, nothing in front) is preferred.
        """
        with self._lock:
            bank = [d for d in self._donors if segment is None or d.segment == segment]
        if not bank:
            raise InvalidArgumentError("the donor bank holds no frame of this camera shot with a usable face")
        targets = np.asarray(targets, np.float64)
        poses = np.asarray(poses, np.float64)
        n = len(frames)
        if targets.shape != (n,) or poses.shape[0] != n:
            raise InvalidArgumentError(f"{n} frames need {n} targets and poses")
        index = np.array([d.index for d in bank])
        opening = np.array([d.opening for d in bank])
        pose = np.stack([d.pose for d in bank])
        finite = opening[np.isfinite(opening)]
        spread = max(float(np.quantile(finite, 0.95) - np.quantile(finite, 0.03)), 1e-3) if finite.size else 1.0
        shape_cost = np.abs(opening[None, :] - targets[:, None]) / spread * SHAPE_WEIGHT
        pose_cost = np.sqrt(np.nanmean((poses[:, None, :] - pose[None, :, :]) ** 2, axis=-1)) * POSE_WEIGHT
        unary = np.nan_to_num(shape_cost + pose_cost, nan=1e6)
        if looks is not None:
            unary += np.maximum(looks_cost(looks[0], looks[1], np.stack([d.crop for d in bank])) - LOOKS_TOLERANCE, 0.0) * LOOKS_WEIGHT
        if exclusion_frames > 0:
            unary[np.abs(np.asarray(frames)[:, None] - index[None, :]) < exclusion_frames] = 1e9
        k = min(CANDIDATES, len(bank))
        candidates = np.argsort(unary, axis=1, kind="stable")[:, :k]
        # Viterbi over the candidates: moving to the next frame is free, holding or skipping one is cheap.
        def step_cost(prev_idx: np.ndarray, cur_idx: np.ndarray) -> np.ndarray:
            step = index[cur_idx][None, :] - index[prev_idx][:, None]
            return np.where(step == 1, 0.0, np.where((step == 0) | (step == 2), HOLD_COST, JUMP_COST))

        cost = unary[0, candidates[0]].copy()
        if previous is not None:
            step = index[candidates[0]] - previous
            cost += np.where(step == 1, 0.0, np.where((step == 0) | (step == 2), HOLD_COST, JUMP_COST))
        back = np.zeros((n, k), np.int64)
        for t in range(1, n):
            total = cost[:, None] + step_cost(candidates[t - 1], candidates[t])
            back[t] = total.argmin(axis=0)
            cost = total[back[t], np.arange(k)] + unary[t, candidates[t]]
        path = np.zeros(n, np.int64)
        path[-1] = int(cost.argmin())
        for t in range(n - 1, 0, -1):
            path[t - 1] = back[t, path[t]]
        chosen = [bank[candidates[t, path[t]]] for t in range(n)]
        jumps = sum(1 for a, b in zip(chosen, chosen[1:]) if b.index != a.index + 1)
        return DonorPlan(frames=tuple(int(f) for f in frames), donors=tuple(chosen), targets=targets, jumps=jumps)
