"""A QC verdict per shot, measured while it renders: would an editor want to look at this before it is cut in?

A dub changes the lips and little else, so what must hold whatever the new line is:

* the face is still a face — the tracker finds it again in the output frames
  (every ``FACE_EVERY``-th edited frame, on the encode thread);
* the cheeks and chin (the lower face outside a margin around the lips) stay
  close to the source: ``cheek_psnr_db``; noise or a smeared jaw drops it to
  about 15-18 dB;
* the texture inside the edited region is the source's kind: ``texture_ratio``
  is the Laplacian variance of the output frame over the source frame's, inside
  the matte (1 = same detail, ≫ 1 noise, ≪ 1 blur).

``verdict`` is ``ok`` or ``review`` with the reasons that tripped, in words an
editor can act on. Everything is measured on what the renderer already holds
(the crops, the frames it writes), so it costs a few milliseconds a frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = ["CHEEK_PSNR_MIN_DB", "FACE_FOUND_MIN", "ShotQC", "TEXTURE_RATIO_RANGE", "lips_region"]

CHEEK_PSNR_MIN_DB = 24.0
TEXTURE_RATIO_RANGE = (0.25, 2.5)
FACE_FOUND_MIN = 0.95
FACE_EVERY = 4

# Face-mesh points of the outer lip contour.
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)


def lips_region(landmarks: np.ndarray, matrix: np.ndarray, size: int, *, margin: float = 0.08) -> np.ndarray:
    """(size, size) bool: the lips' hull in the crop, grown by ``margin`` of the crop side (where a dub may differ)."""
    points = np.asarray(landmarks, np.float64)[list(OUTER_LIPS), :2]
    crop = points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(crop.astype(np.float32)).astype(np.int32), 1)
    grow = max(1, int(round(margin * size)))
    region = cv2.dilate(region, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return region.astype(bool)


def _laplacian_variance(image: np.ndarray, region: np.ndarray) -> float:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    return float(lap[region].var()) if region.any() else 0.0


@dataclass
class ShotQC:
    """Accumulates per-frame figures of one shot; :meth:`result` gives the ``qc`` entry of a RenderedClip."""

    cheek_errors: float = 0.0
    cheek_values: int = 0
    texture_out: list[float] = field(default_factory=list)
    texture_src: list[float] = field(default_factory=list)
    face_checked: int = 0
    face_found: int = 0
    _tracker: Any = None
    _edited: int = 0

    def add_crop(self, restored: np.ndarray, source: np.ndarray, mask: np.ndarray, landmarks: np.ndarray, matrix: np.ndarray) -> None:
        """One edited frame's crops at the SRD size (``mask``: the lower face the networks may change)."""
        inside = np.asarray(mask, bool)
        cheeks = inside & ~lips_region(landmarks, matrix, restored.shape[0])
        if cheeks.any():
            diff = restored[cheeks].astype(np.float64) - source[cheeks]
            self.cheek_errors += float((diff**2).sum())
            self.cheek_values += diff.size

    def add_texture(self, output: np.ndarray, source: np.ndarray, region: np.ndarray) -> None:
        """Fine texture of the edited region in the native frame, output and source (blur and noise show here,
        not on a crop that is itself smaller than the face)."""
        ys, xs = np.nonzero(region)
        if ys.size == 0:
            return
        box = (slice(max(0, ys.min() - 1), ys.max() + 2), slice(max(0, xs.min() - 1), xs.max() + 2))
        self.texture_out.append(_laplacian_variance(output[box], region[box]))
        self.texture_src.append(_laplacian_variance(source[box], region[box]))

    def add_frame(self, frame: np.ndarray) -> None:
        """An edited output frame as written; every ``FACE_EVERY``-th is searched for the face again."""
        self._edited += 1
        if (self._edited - 1) % FACE_EVERY:
            return
        from .face import FaceTracker

        if self._tracker is None:
            self._tracker = FaceTracker()
        self._tracker.reset()  # each sampled frame on its own: a found face must be found from scratch
        self.face_checked += 1
        self.face_found += int(self._tracker.process(frame, self._edited - 1).ok)

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

    def result(self) -> dict[str, Any]:
        """Figures, verdict and reasons (no edited frame: nothing to judge, ``ok``)."""
        self.close()
        figures: dict[str, Any] = {"frames": self._edited}
        reasons = []
        if self.cheek_values:
            cheek = 10 * np.log10(255.0**2 / max(self.cheek_errors / self.cheek_values, 1e-12))
            figures["cheek_psnr_db"] = round(float(cheek), 2)
            if cheek < CHEEK_PSNR_MIN_DB:
                reasons.append(f"the cheeks and chin differ from the source ({cheek:.1f} dB < {CHEEK_PSNR_MIN_DB:.0f} dB): "
                               "the lower face may be smeared or noisy")
        if self.texture_src:
            ratio = float(np.sum(self.texture_out) / max(np.sum(self.texture_src), 1e-6))
            figures["texture_ratio"] = round(ratio, 3)
            lo, hi = TEXTURE_RATIO_RANGE
            if ratio > hi:
                reasons.append(f"the mouth region has {ratio:.1f}x the source's fine texture: noise-like")
            elif ratio < lo:
                reasons.append(f"the mouth region has {ratio:.2f}x the source's fine texture: blurred")
        if self.face_checked:
            found = self.face_found / self.face_checked
            figures["face_found"] = round(found, 3)
            if found < FACE_FOUND_MIN:
                reasons.append(f"the face was found again in only {100 * found:.0f} % of the checked output frames")
        return {**figures, "verdict": "review" if reasons else "ok", "reasons": reasons}
