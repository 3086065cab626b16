"""Mouth shape and head pose from MediaPipe face-mesh landmarks (478 points, any pixel frame).

Both are divided by the distance between the outer eye corners, so they do not depend on the
face's size in the picture: a figure measured on a 40 px face and on a 400 px face means the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHIN", "EYE_CORNERS", "INNER_LIPS", "OUTER_LIPS", "STABLE", "mouth_opening", "pose_signature"]

INNER_LIPS = (13, 14)
"""Upper and lower inner-lip midpoints: their gap is how open the mouth is."""

EYE_CORNERS = (33, 263)
"""Outer eye corners: the face's scale."""

OUTER_LIPS: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
"""The outer lip contour."""

CHIN: tuple[int, ...] = (152, 148, 176, 149, 377, 400, 378)
"""The chin below the lips: it moves with the jaw, so a new mouth carries it along."""

STABLE: tuple[int, ...] = (33, 263, 133, 362, 168, 6, 197, 195, 5, 4, 1, 2, 98, 327, 234, 454, 93, 323, 127, 356, 50, 280)
"""Points that talking does not move (eye corners, nose, upper cheeks): they place one frame's mouth
on another and say how alike two head poses are (the paper's reference frames are matched on
landmarks without the lips, section 3.1)."""


def _points(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    return lm[None] if lm.ndim == 2 else lm


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """``[N]`` inner-lip gap over the eye-corner distance for ``[N, 478, ≥2]`` landmarks (NaN where missing).

    0 is a closed mouth; speech ranges over about 0.02-0.2.
    """
    lm = _points(landmarks)
    gap = np.linalg.norm(lm[:, INNER_LIPS[1], :2] - lm[:, INNER_LIPS[0], :2], axis=1)
    eyes = np.linalg.norm(lm[:, EYE_CORNERS[1], :2] - lm[:, EYE_CORNERS[0], :2], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(eyes > 1e-6, gap / eyes, np.nan)


def pose_signature(landmarks: np.ndarray) -> np.ndarray:
    """``[N, 2·len(STABLE)]``: the stable points relative to the eyes' midpoint, over the eye distance.

    Two frames whose signatures are close show the head in the same pose (yaw, pitch and roll move
    these points against each other), whatever the face's size or place in the frame.
    """
    lm = _points(landmarks)[:, :, :2]
    left, right = lm[:, EYE_CORNERS[0]], lm[:, EYE_CORNERS[1]]
    centre = (left + right) / 2
    eyes = np.linalg.norm(right - left, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = (lm[:, list(STABLE)] - centre[:, None]) / eyes[:, None, None]
    return rel.reshape(len(lm), -1)
