"""Paste-back: put an edited face crop into the native frame, keeping native detail.

Detail-preserving composite. With up(x) the crop inverse-warped into frame pixels and
a = up(matte)::

    out = frame·(1 − a) + a·(up(edited) + (1 − g)·(frame − up(original)))
        = frame + a·(up(edited − original) − g·(frame − up(original)))

where g ∈ [0, 1] grows with the edit magnitude. Why: the crop (224 px) cannot hold all the
native detail of a large face. Where the edit leaves the picture (nearly) unchanged, g = 0
and the output is the native frame plus the edit's small change — grain and fine detail
come back exactly. Where the mouth changed, g = 1 and the edited pixels replace the old
ones, so the old mouth's native detail does not ghost through.

g is a smoothstep of the edit magnitude (max over channels of |edited − original| in 0..255
levels, measured on the crop and dilated by one pixel so that an edited edge's neighbours
count as edited too): 0 at or below ``edit_low`` (default 4 levels, about the noise of a
re-encoded crop), 1 at or above ``edit_high`` (16 levels, a visible change). It is measured
on the crop rather than after upsampling: cheaper, and spatially smoother.

Consequences (tested): pasting back the unchanged crop gives the frame back (|diff| ≤ 1
inside the matte), and pixels where up(matte) = 0 are bit-identical to the input frame.
Work is done only inside the bounding box of the matte's footprint, in float32.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = ["add_changes", "apply_change", "paste_back", "paste_change", "edit_weight", "EDIT_LOW_LEVELS", "EDIT_HIGH_LEVELS"]

EDIT_LOW_LEVELS = 4.0
"""Edit magnitude (0..255 levels) at and below which native detail is fully kept (g = 0)."""

EDIT_HIGH_LEVELS = 16.0
"""Edit magnitude at and above which the edited pixels replace the native ones (g = 1)."""


def edit_weight(
    edited_crop: np.ndarray,
    original_crop: np.ndarray,
    *,
    edit_low: float = EDIT_LOW_LEVELS,
    edit_high: float = EDIT_HIGH_LEVELS,
) -> np.ndarray:
    """g on the crop: (S, S) float32 in [0, 1], smoothstep of the (dilated) edit magnitude."""
    if not edit_high > edit_low >= 0:
        raise InvalidArgumentError(f"need 0 <= edit_low < edit_high, got {edit_low}, {edit_high}")
    diff = np.abs(edited_crop.astype(np.float32) - original_crop.astype(np.float32)).max(axis=2)
    diff = cv2.dilate(diff, np.ones((3, 3), np.uint8))
    t = np.clip((diff - edit_low) / (edit_high - edit_low), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_back(
    frame: np.ndarray,
    edited_crop: np.ndarray,
    original_crop: np.ndarray,
    matrix: np.ndarray,
    matte: np.ndarray,
    *,
    edit_low: float = EDIT_LOW_LEVELS,
    edit_high: float = EDIT_HIGH_LEVELS,
) -> np.ndarray:
    """A new H×W×3 uint8 frame with the edited crop composited in; ``frame`` is untouched.

    ``edited_crop``/``original_crop``: S×S×3 uint8 (``original_crop`` is what
    ``warp_crop(frame, matrix, S)`` gave); ``matrix``: the 2×3 frame→crop matrix for size S;
    ``matte``: S×S float in [0, 1] (e.g. :func:`~edidub_engine.face.masks.feathered_matte`).
    """
    return apply_change(frame, paste_change(frame, edited_crop, original_crop, matrix, matte, edit_low=edit_low, edit_high=edit_high))


def apply_change(frame: np.ndarray, change: tuple[int, int, np.ndarray] | None) -> np.ndarray:
    """A new uint8 RGB frame: ``frame`` plus a :func:`paste_change` result, rounded and clipped."""
    out = frame.copy()
    if change is None:
        return out
    x0, y0, values = change
    y1, x1 = y0 + values.shape[0], x0 + values.shape[1]
    values = values + frame[y0:y1, x0:x1]
    np.rint(values, out=values)
    np.clip(values, 0, 255, out=values)
    out[y0:y1, x0:x1] = values.astype(np.uint8)
    return out


def add_changes(first: tuple[int, int, np.ndarray] | None, second: tuple[int, int, np.ndarray] | None) -> tuple[int, int, np.ndarray] | None:
    """Two :func:`paste_change` results to one frame as one: their boxes' union, the changes summed."""
    if first is None or second is None:
        return first if second is None else second
    (ax, ay, av), (bx, by, bv) = first, second
    x0, y0 = min(ax, bx), min(ay, by)
    x1, y1 = max(ax + av.shape[1], bx + bv.shape[1]), max(ay + av.shape[0], by + bv.shape[0])
    out = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    out[ay - y0 : ay - y0 + av.shape[0], ax - x0 : ax - x0 + av.shape[1]] += av
    out[by - y0 : by - y0 + bv.shape[0], bx - x0 : bx - x0 + bv.shape[1]] += bv
    return x0, y0, out


def paste_change(
    frame: np.ndarray,
    edited_crop: np.ndarray,
    original_crop: np.ndarray,
    matrix: np.ndarray,
    matte: np.ndarray,
    *,
    edit_low: float = EDIT_LOW_LEVELS,
    edit_high: float = EDIT_HIGH_LEVELS,
) -> tuple[int, int, np.ndarray] | None:
    """What :func:`paste_back` adds to ``frame``: ``(x0, y0, change)`` with ``change`` the h×w×3 float32
    RGB change (8-bit levels) of the box whose top-left frame pixel is ``(x0, y0)``, exactly 0 wherever
    the matte does not reach; None when it reaches no pixel. The source's own pixels take it as it is
    (:class:`~edidub_engine.media.native.NativePicture`)."""
    _check(frame, edited_crop, original_crop, matrix, matte)
    h, w = frame.shape[:2]
    m = np.asarray(matrix, dtype=np.float64)
    matte = np.clip(np.asarray(matte, dtype=np.float32), 0.0, 1.0)
    ys, xs = np.nonzero(matte > 0)
    if ys.size == 0:
        return None
    # Footprint of the matte's support in the frame (+1 crop px for bilinear reach).
    inv = cv2.invertAffineTransform(m)
    cx0, cx1 = xs.min() - 1.0, xs.max() + 1.0
    cy0, cy1 = ys.min() - 1.0, ys.max() + 1.0
    corners = np.array([[cx0, cy0, 1], [cx1, cy0, 1], [cx0, cy1, 1], [cx1, cy1, 1]]) @ inv.T
    x0 = max(0, math.floor(corners[:, 0].min()) - 1)
    y0 = max(0, math.floor(corners[:, 1].min()) - 1)
    x1 = min(w, math.ceil(corners[:, 0].max()) + 2)
    y1 = min(h, math.ceil(corners[:, 1].max()) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    bw, bh = x1 - x0, y1 - y0
    # Box pixel q ↔ frame pixel q + (x0, y0) ↔ crop pixel m·(q + o): a dst→src map.
    m_box = m.copy()
    m_box[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP

    def up(img: np.ndarray, border: int) -> np.ndarray:
        return cv2.warpAffine(img, m_box, (bw, bh), flags=flags, borderMode=border, borderValue=0)

    alpha = up(matte, cv2.BORDER_CONSTANT)
    if not (alpha > 0).any():
        return None
    edited_f = edited_crop.astype(np.float32)
    original_f = original_crop.astype(np.float32)
    delta = up(edited_f - original_f, cv2.BORDER_CONSTANT)  # exactly 0 where the crops agree
    up_original = up(original_f, cv2.BORDER_REPLICATE)
    g = up(edit_weight(edited_crop, original_crop, edit_low=edit_low, edit_high=edit_high), cv2.BORDER_CONSTANT)

    roi = frame[y0:y1, x0:x1].astype(np.float32)
    # alpha·(delta − g·(roi − up_original)), in place to spare temporaries.
    result = np.subtract(roi, up_original, out=up_original)
    result *= g[..., None]
    np.subtract(delta, result, out=result)
    result *= alpha[..., None]
    return x0, y0, result


def _check(
    frame: np.ndarray, edited: np.ndarray, original: np.ndarray, matrix: np.ndarray, matte: np.ndarray
) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidArgumentError(f"frame must be an H×W×3 uint8 array, got {getattr(frame, 'shape', None)}")
    for name, crop in (("edited_crop", edited), ("original_crop", original)):
        if (
            not isinstance(crop, np.ndarray)
            or crop.dtype != np.uint8
            or crop.ndim != 3
            or crop.shape[2] != 3
            or crop.shape[0] != crop.shape[1]
        ):
            raise InvalidArgumentError(f"{name} must be an S×S×3 uint8 array, got {getattr(crop, 'shape', None)}")
    if edited.shape != original.shape:
        raise InvalidArgumentError(f"edited_crop {edited.shape} and original_crop {original.shape} differ in shape")
    if np.asarray(matte).shape != edited.shape[:2]:
        raise InvalidArgumentError(f"matte shape {np.asarray(matte).shape} does not match the crop {edited.shape[:2]}")
    m = np.asarray(matrix)
    if m.shape != (2, 3) or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2].astype(np.float64))) < 1e-12:
        raise InvalidArgumentError(f"matrix must be a finite, invertible 2×3 frame→crop transform, got shape {m.shape}")
