"""Move a donor frame's mouth onto a target frame: the same function at the LSD crop's size and at
the native frame's.

The donor is placed by a similarity transform fitted on the stable landmarks (eyes, nose, upper
cheeks: :data:`~.shape.STABLE`), so its mouth sits where the target's face puts it. The region moved is
the lips and the chin (the jaw carries the chin with it), taken from both faces — the target's old
mouth must be covered and the donor's new one shown — grown and feathered so no edge shows. The donor's
colour is matched to the target's on the feathered rim, where both show the same skin: the same shot
can change its light between two frames. The region ends inside the two faces' outlines (no neck, collar or
hand from another frame), and where the two faces differ only in shading the target keeps its own fine detail
(pores, grain): only the lips, teeth and opening, where the difference is a visible change, come whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face.compose import EDIT_HIGH_LEVELS, EDIT_LOW_LEVELS
from edidub_engine.face.masks import FACE_OVAL
from edidub_engine.mouth.shape import CHIN, EYE_CORNERS, OUTER_LIPS, STABLE

__all__ = ["MouthTransplant", "apply_transplant", "mouth_patch", "transplant", "transplant_change"]

REGION_GROW = 1.35  # the lips-and-chin hull grown about its centre
FEATHER = 0.12  # Gaussian feather, σ in eye distances
RIM = (0.05, 0.6)  # the feathered rim (alpha range) where the two skins are compared
DETAIL = 0.02  # the scale (eye distances) below which a difference in skin is the target's own detail, kept
OUTLINE = 0.03  # the feather (eye distances) inside the faces' outlines, where the region ends


@dataclass(frozen=True)
class MouthTransplant:
    """A target image's box ``[y0:y0+h, x0:x0+w]`` with the donor's mouth in it."""

    x0: int
    y0: int
    pixels: np.ndarray  # [h, w, 3] uint8: the box as it should look
    alpha: np.ndarray  # [h, w] float32: how much of it is the donor's


def _region(points: np.ndarray, grow: float) -> np.ndarray:
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    centre = hull.mean(axis=0)
    return (hull - centre) * grow + centre


def transplant(target: np.ndarray, target_landmarks: np.ndarray, donor: np.ndarray, donor_landmarks: np.ndarray,
               *, strength: float = 1.0) -> MouthTransplant | None:
    """The donor's mouth on ``target`` (``[H, W, 3]`` uint8); landmarks ``[478, ≥2]`` in each image's pixels.

    ``strength`` scales the alpha (a ramp into a passed-through stretch). None when the landmarks are
    degenerate or the region misses the image.
    """
    t_lm = np.asarray(target_landmarks, np.float64)[:, :2]
    d_lm = np.asarray(donor_landmarks, np.float64)[:, :2]
    if t_lm.shape[0] < 468 or d_lm.shape[0] < 468 or not (np.isfinite(t_lm).all() and np.isfinite(d_lm).all()):
        raise InvalidArgumentError("a mouth transplant needs 478 finite face-mesh landmarks on both faces")
    stable = list(STABLE)
    matrix, _ = cv2.estimateAffinePartial2D(d_lm[stable], t_lm[stable], method=cv2.LMEDS)
    if matrix is None:
        return None
    moved = d_lm @ matrix[:, :2].T + matrix[:, 2]
    region = list(OUTER_LIPS) + list(CHIN)
    eye = float(np.linalg.norm(t_lm[EYE_CORNERS[1]] - t_lm[EYE_CORNERS[0]]))
    sigma = max(FEATHER * eye, 0.5)
    reach = int(np.ceil(3 * sigma)) + 1
    hulls = [_region(t_lm[region], REGION_GROW), _region(moved[region], REGION_GROW)]
    corners = np.concatenate(hulls)
    h_img, w_img = target.shape[:2]
    x0, y0 = max(0, int(np.floor(corners[:, 0].min())) - reach), max(0, int(np.floor(corners[:, 1].min())) - reach)
    x1, y1 = min(w_img, int(np.ceil(corners[:, 0].max())) + reach + 1), min(h_img, int(np.ceil(corners[:, 1].max())) + reach + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    w, h = x1 - x0, y1 - y0
    mask = np.zeros((h, w), np.float32)
    for hull in hulls:
        cv2.fillConvexPoly(mask, np.round((hull - (x0, y0)) * 16).astype(np.int32), 1.0, lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask, (0, 0), sigma)
    # Nothing beyond the faces' outlines moves (the neck, a collar, a hand raised below the chin): the region is held
    # inside the target's face and the moved donor's (a jaw that opens wider reaches below the target's chin).
    face = np.zeros((h, w), np.float32)
    for points in (t_lm, moved):
        cv2.fillPoly(face, [np.round((points[list(FACE_OVAL)] - (x0, y0)) * 16).astype(np.int32)], 1.0, lineType=cv2.LINE_AA, shift=4)
    edge = max(OUTLINE * eye, 0.5)
    face = cv2.GaussianBlur(cv2.erode(face, np.ones((3, 3), np.uint8), iterations=max(1, int(round(edge)))), (0, 0), edge)
    alpha *= face
    box = matrix.copy()
    box[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(donor, box, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    roi = target[y0:y1, x0:x1].astype(np.float32)
    warped = warped.astype(np.float32)
    rim = (alpha > RIM[0]) & (alpha < RIM[1])
    if rim.any():
        warped += (roi[rim] - warped[rim]).mean(axis=0)
    alpha *= np.float32(np.clip(strength, 0.0, 1.0))
    # Keep the target's own fine detail where the two faces differ only in shading (skin, pores, grain): there only
    # the difference's smooth part is taken; where the mouth itself differs (lips, teeth, the opening) all of it is.
    # A donor kept reduced (a large face) or moved from another pose would otherwise soften the whole region.
    difference = warped - roi
    smooth = cv2.GaussianBlur(difference, (0, 0), max(1.5, DETAIL * eye))
    weight = edit_weight_levels(np.abs(smooth).max(axis=2))
    out = roi + alpha[..., None] * (smooth + weight[..., None] * (difference - smooth))
    return MouthTransplant(x0, y0, np.clip(np.rint(out), 0, 255).astype(np.uint8), alpha)


def edit_weight_levels(magnitude: np.ndarray) -> np.ndarray:
    """0 at or below a re-encode's noise (:data:`~edidub_engine.face.compose.EDIT_LOW_LEVELS`), 1 from a visible change
    (``EDIT_HIGH_LEVELS``) up, smooth between: how much of a difference is a new mouth rather than the same skin."""
    t = np.clip((magnitude - EDIT_LOW_LEVELS) / (EDIT_HIGH_LEVELS - EDIT_LOW_LEVELS), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def apply_transplant(image: np.ndarray, moved: MouthTransplant | None) -> np.ndarray:
    """A copy of ``image`` with the transplant's box in it (``image`` itself when there is none)."""
    if moved is None:
        return image
    out = image.copy()
    h, w = moved.pixels.shape[:2]
    out[moved.y0 : moved.y0 + h, moved.x0 : moved.x0 + w] = moved.pixels
    return out


PATCH_MARGIN = 0.7  # eye distances of frame around the lips and chin kept for a donor
PATCH_MAX_PX = 384  # a donor patch's longest side; larger mouths are kept reduced (memory: a bank holds hundreds; a 1080p close-up's is about 470 px)


def mouth_patch(frame: np.ndarray, landmarks: np.ndarray, *, max_side_px: int = PATCH_MAX_PX) -> tuple[np.ndarray, np.ndarray]:
    """``(patch, patch_landmarks)``: the frame's pixels around the mouth (reduced to at most ``max_side_px``)
    and the landmarks in the patch's pixels — what a donor frame keeps of its picture."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    pts = lm[list(OUTER_LIPS) + list(CHIN)]
    eye = float(np.linalg.norm(lm[EYE_CORNERS[1]] - lm[EYE_CORNERS[0]]))
    margin = PATCH_MARGIN * eye
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(np.floor(pts[:, 0].min() - margin))), max(0, int(np.floor(pts[:, 1].min() - margin)))
    x1, y1 = min(w, int(np.ceil(pts[:, 0].max() + margin)) + 1), min(h, int(np.ceil(pts[:, 1].max() + margin)) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise InvalidArgumentError("the mouth lies outside the frame")
    patch = frame[y0:y1, x0:x1]
    scale = min(1.0, max_side_px / max(x1 - x0, y1 - y0))
    if scale < 1.0:
        size = (max(2, round((x1 - x0) * scale)), max(2, round((y1 - y0) * scale)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        scale_xy = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)])
    else:
        patch, scale_xy = patch.copy(), np.ones(2)
    # OpenCV's pixel centres: a pixel's centre maps to its centre under the area resize.
    local = (lm - (x0, y0) + 0.5) * scale_xy - 0.5
    return patch, local.astype(np.float32)


def transplant_change(image: np.ndarray, moved: MouthTransplant | None) -> tuple[int, int, np.ndarray] | None:
    """The transplant as a change to ``image``: ``(x0, y0, float32 change)``, as
    :func:`~edidub_engine.face.paste_change` gives one (None: no change)."""
    if moved is None:
        return None
    h, w = moved.pixels.shape[:2]
    return moved.x0, moved.y0, moved.pixels.astype(np.float32) - image[moved.y0 : moved.y0 + h, moved.x0 : moved.x0 + w]
