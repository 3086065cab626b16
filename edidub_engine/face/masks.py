"""Masks in crop coordinates: the paper's lower-face mask and the paste-back matte.

The paper (§3.1) inpaints "the facial area below the speaker's eyes". Here that is the
face-oval polygon of the MediaPipe mesh cut by a line just under the lower eyelids (which
also closes the region across the nose), grown by a few pixels so that a jaw the dub opens
wider than the original still lies inside the mask.
"""

from __future__ import annotations

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = ["FACE_OVAL", "LOWER_EYELIDS", "lower_face_mask", "feathered_matte", "landmarks_to_crop"]

FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe face-oval landmarks, in order around the face."""

LOWER_EYELIDS: tuple[tuple[int, ...], tuple[int, ...]] = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133),
    (362, 382, 381, 380, 374, 373, 390, 249, 263),
)
"""Lower-lid contour of each eye (image left, image right)."""

_CHIN = 152


def landmarks_to_crop(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) float64 crop-pixel coordinates of frame landmarks under a 2×3 frame→crop matrix."""
    pts = np.asarray(landmarks, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < 468 or pts.shape[1] < 2:
        raise InvalidArgumentError(f"landmarks must be (478, 3) MediaPipe points, got shape {pts.shape}")
    if m.shape != (2, 3):
        raise InvalidArgumentError(f"matrix must be 2×3, got shape {m.shape}")
    return pts[:, :2] @ m[:, :2].T + m[:, 2]


def lower_face_mask(
    landmarks: np.ndarray,
    matrix: np.ndarray,
    size: int,
    *,
    grow_px: int | None = None,
    eye_margin_px: float | None = None,
) -> np.ndarray:
    """(size, size) float32 {0, 1}: the face below the eyes, in the crop ``matrix`` maps to.

    ``matrix`` is the frame→crop matrix for this ``size`` (``FaceAlignment.matrix_for(size)``).
    ``grow_px`` (default 3 % of ``size``) dilates the face oval outward — room for a lower
    jaw; ``eye_margin_px`` (default 2 % of ``size``) is how far below the lowest lower-eyelid
    point the cut runs. The cut is applied after growing, so the eyes stay outside.
    """
    size = int(size)
    if size < 4:
        raise InvalidArgumentError(f"mask size must be at least 4 pixels, got {size}")
    pts = landmarks_to_crop(landmarks, matrix)
    grow = round(0.03 * size) if grow_px is None else int(grow_px)
    margin = 0.02 * size if eye_margin_px is None else float(eye_margin_px)

    mask = np.zeros((size, size), np.uint8)
    oval = np.round(pts[list(FACE_OVAL)] * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [oval], 1, lineType=cv2.LINE_8, shift=4)
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        mask = cv2.dilate(mask, kernel)

    # The eye line: through both lower lids, its normal pointing to the chin.
    lid_l, lid_r = pts[list(LOWER_EYELIDS[0])], pts[list(LOWER_EYELIDS[1])]
    direction = lid_r.mean(axis=0) - lid_l.mean(axis=0)
    norm = np.hypot(*direction)
    if norm < 1e-6:
        raise InvalidArgumentError("degenerate landmarks: the eyes coincide")
    normal = np.array([-direction[1], direction[0]]) / norm
    if normal @ (pts[_CHIN] - lid_l.mean(axis=0)) < 0:
        normal = -normal
    offset = max((lid_l @ normal).max(), (lid_r @ normal).max()) + margin
    yy, xx = np.mgrid[0:size, 0:size]
    below = (xx * normal[0] + yy * normal[1]) >= offset
    return (mask.astype(bool) & below).astype(np.float32)


def feathered_matte(mask: np.ndarray, *, feather_px: float, grow_px: float | None = None) -> np.ndarray:
    """Paste-back matte in [0, 1] (float32): soft inside, exactly 0 beyond a thin grown rim.

    With ``sd`` the signed distance to the mask boundary (positive inside), the matte ramps
    (smoothstep) from 0 at ``sd = -grow_px`` to 1 at ``sd = feather_px - grow_px``;
    ``grow_px`` defaults to min(2, feather_px / 4). So the edited pixels fade out inside the
    mask, where the model was asked to inpaint, and nothing beyond ``grow_px`` changes.
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise InvalidArgumentError(f"mask must be a 2-D array, got shape {m.shape}")
    if feather_px < 0:
        raise InvalidArgumentError(f"feather_px must be >= 0, got {feather_px}")
    inside = (m > 0.5).astype(np.uint8)
    if feather_px == 0 or not inside.any():
        return inside.astype(np.float32)
    grow = min(2.0, feather_px / 4.0) if grow_px is None else float(grow_px)
    if not 0 <= grow <= feather_px:
        raise InvalidArgumentError(f"grow_px must be in [0, feather_px], got {grow}")
    if inside.all():
        return np.ones(m.shape, np.float32)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    sd = np.where(inside > 0, d_in - 0.5, 0.5 - d_out)
    t = np.clip((sd + grow) / feather_px, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
