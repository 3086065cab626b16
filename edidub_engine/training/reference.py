"""Training reference frames (paper §3.1, "Accurate visual reference").

At inference the LSD model sees the original, unmasked video as its reference.
Training on the target frame itself as reference would teach it to copy, so each
training frame ``i`` gets instead the frame ``j`` of the same clip *and the same
shot* whose facial landmarks, **excluding the lips and everything the lower jaw
moves**, are nearest, with ``|i - j| > k`` (the exclusion window). The reference
then shows the same head pose, gaze and upper-face expression with a *different*
mouth, so the network learns to take appearance, not mouth shape, from it.

Landmark set (:data:`REFERENCE_LANDMARKS`, 103 of MediaPipe's 478): both eyes,
both irises, both eyebrows, the nose (bridge, tip, alae) and the face oval from
the forehead down to the cheek points at the jaw hinge (93/234/323/454…).
Excluded: the lips (:data:`LIP_LANDMARKS`) and the chin and lower jaw line
(:data:`JAW_LANDMARKS`) — when the mouth opens the mandible drops, so matching
the jaw would match mouth openness and leak the target's mouth into its
reference. Everything else on the mesh around the mouth (the perioral cheeks)
is also left out simply by not being in the set.

Distance: mean squared Euclidean distance over that set, in *crop* pixels (x, y
of the 224-px aligned crop; z, MediaPipe's relative depth, is noisy and left
out). The crop transform is a similarity fitted to rigid landmarks, so in crop
coordinates head translation, in-plane rotation and face size are already
removed: what remains is what makes two crops look alike — yaw/pitch (the nose
moves against the oval), gaze, blinks, brows. Distances in frame pixels would
instead be dominated by where the head is in the frame.

Exclusion window (:data:`DEFAULT_EXCLUSION_FRAMES` = 24): ``j`` qualifies only if
``|i - j| > k``. k = 24 = one 25-frame LSD training window minus one, so a
frame's reference never lies inside any training window that also contains the
frame. With a smaller k (e.g. 12) the reference of frame ``i`` can be frame
``j`` of the same window, whose unmasked upper face is pixel-identical to the
reference; the network could then find ``j`` and copy the reference's mouth
into it — exactly the degenerate copying the paper avoids. The cost: a frame has
a reference only if the shot holds a valid frame 25+ frames away, so shots
shorter than 50 frames lose their middle frames (GRID clips have 75).

A frame with no qualifying frame (invalid itself, or its shot too short) gets
``-1``; datasets never use such frames as targets (see :mod:`.dataset`).
Ties go to the lowest frame index (numpy ``argmin``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = [
    "DEFAULT_EXCLUSION_FRAMES",
    "JAW_LANDMARKS",
    "LIP_LANDMARKS",
    "NO_REFERENCE",
    "REFERENCE_LANDMARKS",
    "REFERENCE_LANDMARKS_VERSION",
    "landmark_distances",
    "select_references",
    "shot_ids_from_cuts",
]

DEFAULT_EXCLUSION_FRAMES = 24
"""k: a reference is more than k frames from its target (one 25-frame window minus one)."""

NO_REFERENCE = -1
"""Reference index of a frame that has none."""

# mediapipe.solutions.face_mesh_connections, written out so nothing loads MediaPipe here.
LIP_LANDMARKS: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181,
    185, 191, 267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
"""FACEMESH_LIPS (outer and inner lip contours)."""

JAW_LANDMARKS: tuple[int, ...] = (
    361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132,
)  # fmt: skip
"""The face oval below the jaw hinge: the lower jaw line and chin, which the mandible moves."""

_EYES = (
    7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246,
    249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466,
)  # fmt: skip
_IRISES = (469, 470, 471, 472, 474, 475, 476, 477)
_BROWS = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
_NOSE = (
    1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440,
)  # fmt: skip
_UPPER_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 93, 234, 127, 162, 21, 54, 103, 67, 109)

REFERENCE_LANDMARKS: tuple[int, ...] = tuple(sorted(set(_EYES + _IRISES + _BROWS + _NOSE + _UPPER_OVAL)))
"""Landmarks compared when choosing a reference: the face without lips, chin and lower jaw."""

REFERENCE_LANDMARKS_VERSION = "upper-face-103/1"
"""Changes whenever :data:`REFERENCE_LANDMARKS` or the distance changes (part of a shard's settings)."""

assert not set(REFERENCE_LANDMARKS) & (set(LIP_LANDMARKS) | set(JAW_LANDMARKS))

_ROW_BLOCK = 1024  # rows of the distance matrix computed at once: memory ~ block x shot length


def shot_ids_from_cuts(num_frames: int, cut_before: Iterable[int] = ()) -> np.ndarray:
    """``[num_frames]`` int64 shot number per frame; each index in ``cut_before`` starts a new shot."""
    starts = np.zeros(int(num_frames), dtype=np.int64)
    for c in cut_before:
        c = int(c)
        if 0 < c < num_frames:
            starts[c] = 1
    return np.cumsum(starts)


def _features(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1] < max(REFERENCE_LANDMARKS) + 1 or pts.shape[2] < 2:
        raise InvalidArgumentError(f"landmarks must be [frames x 478 x 2] crop coordinates, got shape {pts.shape}")
    return pts[:, list(REFERENCE_LANDMARKS), :2].reshape(len(pts), -1)


def landmark_distances(landmarks_a: np.ndarray, landmarks_b: np.ndarray) -> np.ndarray:
    """``[A x B]`` mean squared distance (crop px²) over :data:`REFERENCE_LANDMARKS` between two frame sets."""
    a, b = _features(landmarks_a), _features(landmarks_b)
    # ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2 (float64: error ~1e-9 px², far below any real difference)
    d = (a * a).sum(1)[:, None] - 2.0 * (a @ b.T) + (b * b).sum(1)[None, :]
    return np.maximum(d, 0.0) / len(REFERENCE_LANDMARKS)


def select_references(
    landmarks: np.ndarray,
    valid: np.ndarray,
    *,
    exclusion_frames: int = DEFAULT_EXCLUSION_FRAMES,
    shot_ids: np.ndarray | None = None,
) -> np.ndarray:
    """``[N]`` int64 reference frame per frame, :data:`NO_REFERENCE` where none qualifies.

    ``landmarks``: ``[N x 478 x 2]`` (or ``x 3``) in crop pixels; rows of invalid frames are
    ignored (may be NaN). ``valid``: ``[N]`` bool. ``shot_ids``: ``[N]`` shot number per frame
    (:func:`shot_ids_from_cuts`); a reference is always in its frame's shot. Frame ``j`` is a
    candidate for frame ``i`` when both are valid, share a shot and ``|i - j| > exclusion_frames``;
    the candidate of least :func:`landmark_distances` wins.
    """
    valid = np.asarray(valid, dtype=bool)
    n = len(valid)
    if exclusion_frames < 0:
        raise InvalidArgumentError(f"exclusion window must be >= 0 frames, got {exclusion_frames}", hint="pass k >= 0")
    if len(landmarks) != n:
        raise InvalidArgumentError(f"{len(landmarks)} landmark rows for {n} frames")
    shots = np.zeros(n, np.int64) if shot_ids is None else np.asarray(shot_ids, dtype=np.int64)
    if shots.shape != (n,):
        raise InvalidArgumentError(f"shot_ids has shape {shots.shape}, expected ({n},)")
    out = np.full(n, NO_REFERENCE, dtype=np.int64)
    k = int(exclusion_frames)
    for shot in np.unique(shots):
        frames = np.flatnonzero((shots == shot) & valid)
        if len(frames) < 2:
            continue
        feats = np.asarray(landmarks, dtype=np.float64)[frames]
        for lo in range(0, len(frames), _ROW_BLOCK):
            rows = frames[lo : lo + _ROW_BLOCK]
            d = landmark_distances(feats[lo : lo + _ROW_BLOCK], feats)
            d[np.abs(rows[:, None] - frames[None, :]) <= k] = np.inf
            best = np.argmin(d, axis=1)
            found = np.isfinite(d[np.arange(len(rows)), best])
            out[rows[found]] = frames[best[found]]
    return out
