"""Alignment: a per-frame similarity transform (rotation, uniform scale, translation) from
native frame pixels to a square face crop, temporally smoothed, and the crop warp itself.

Framing (:data:`TEMPLATE_UV`, crop units, 0..1 over the crop side): a frontal face sits with the
forehead top (landmark 10) at v = 0.14, the chin (152) at v = 0.86 with the mouth closed, the
cheek/ear points (234, 454) at u = 0.20 / 0.80 and the eyes at v ≈ 0.36. That leaves ~0.14 of
the side below the chin for a jaw opened wider by the dub and ~0.2 at each side for the
lower-face mask's feathered edge. The template is the mirror-symmetrised mean of seven
frontal faces (MEAD, GRID, Real3D footage), measured with :class:`FaceTracker`.

The transform is fitted (weighted least squares) to rigid landmarks only — eye corners,
nose bridge and tip, forehead, and the face oval at eye/cheek height — never lips, chin or
jaw, so that talking does not move the crop.

Pixel convention: OpenCV's, the centre of the top-left pixel is (0, 0), in the frame and in
the crop. ``matrix_for(size)`` keeps pixel *areas* aligned, so
``cv2.resize(crop_224, (64, 64), INTER_AREA)`` ≈ ``warp_crop(frame, matrix_for(64), 64)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face.tracking import FaceObservation, FaceStatus

__all__ = [
    "CROP_PX",
    "TEMPLATE_UV",
    "FaceAlignment",
    "AlignmentSmoother",
    "smooth_alignments",
    "fit_similarity",
    "warp_crop",
]

CROP_PX = 224
"""Side of the reference crop whose matrix :class:`FaceAlignment` stores (the SRD resolution)."""

# landmark index: (u, v, weight). Oval points vary more between people: half weight.
_TEMPLATE: dict[int, tuple[float, float, float]] = {
    33: (0.3104, 0.3591, 1.0),  # right eye outer corner (image left)
    263: (0.6896, 0.3591, 1.0),
    133: (0.4263, 0.3671, 1.0),  # right eye inner corner
    362: (0.5737, 0.3671, 1.0),
    168: (0.5000, 0.3458, 1.0),  # nose bridge, top to tip
    6: (0.5000, 0.3775, 1.0),
    197: (0.5000, 0.4078, 1.0),
    195: (0.5000, 0.4366, 1.0),
    5: (0.5000, 0.4676, 1.0),
    4: (0.5000, 0.5049, 1.0),
    10: (0.5000, 0.1400, 0.5),  # forehead top
    151: (0.5000, 0.2070, 0.5),
    9: (0.5000, 0.2807, 0.5),
    127: (0.2016, 0.3835, 0.5),  # face oval, temple to cheek (above the jaw hinge)
    356: (0.7984, 0.3835, 0.5),
    234: (0.2034, 0.4455, 0.5),
    454: (0.7966, 0.4455, 0.5),
    93: (0.2080, 0.5086, 0.5),
    323: (0.7920, 0.5086, 0.5),
}
STABLE_LANDMARKS: tuple[int, ...] = tuple(_TEMPLATE)
TEMPLATE_UV = np.array([_TEMPLATE[i][:2] for i in STABLE_LANDMARKS], dtype=np.float64)
_WEIGHTS = np.array([_TEMPLATE[i][2] for i in STABLE_LANDMARKS], dtype=np.float64)


def _scale_matrix(matrix: np.ndarray, from_px: int, to_px: int) -> np.ndarray:
    """The same crop at another size: pixel areas stay aligned (centre-of-pixel convention)."""
    k = to_px / from_px
    out = np.array(matrix, dtype=np.float64) * k
    out[:, 2] += 0.5 * (k - 1.0)
    return out


@dataclass
class FaceAlignment:
    """Frame→crop transform of one frame; ``matrix`` is for the :data:`CROP_PX` crop, None when invalid."""

    frame_index: int
    valid: bool
    matrix: np.ndarray | None = None

    def matrix_for(self, size: int) -> np.ndarray:
        """2×3 float64 frame→crop matrix for a ``size``×``size`` crop of the same framing."""
        if not self.valid or self.matrix is None:
            raise InvalidArgumentError(f"frame {self.frame_index} has no face alignment (no face or low confidence)")
        if int(size) < 1:
            raise InvalidArgumentError(f"crop size must be a positive number of pixels, got {size}")
        return _scale_matrix(self.matrix, CROP_PX, int(size))


@dataclass(frozen=True)
class _Params:
    """Similarity as smoothable parameters: crop px per frame px, angle (rad), frame point at the crop centre."""

    scale: float
    angle_rad: float
    center_x_px: float
    center_y_px: float

    def matrix(self) -> np.ndarray:
        a = self.scale * math.cos(self.angle_rad)
        b = self.scale * math.sin(self.angle_rad)
        c = (CROP_PX - 1) / 2.0
        tx = c - (a * self.center_x_px - b * self.center_y_px)
        ty = c - (b * self.center_x_px + a * self.center_y_px)
        return np.array([[a, -b, tx], [b, a, ty]], dtype=np.float64)


def fit_similarity(landmarks: np.ndarray, size: int = CROP_PX) -> np.ndarray:
    """Weighted least-squares similarity from frame landmarks (478, ≥2) to the template; 2×3 for ``size``."""
    return _scale_matrix(_fit_params(landmarks).matrix(), CROP_PX, size)


def _fit_params(landmarks: np.ndarray) -> _Params:
    pts = np.asarray(landmarks, dtype=np.float64)[list(STABLE_LANDMARKS), :2]
    src = pts[:, 0] + 1j * pts[:, 1]
    # Template in crop pixels (centre-of-pixel convention).
    dst = (TEMPLATE_UV[:, 0] * CROP_PX - 0.5) + 1j * (TEMPLATE_UV[:, 1] * CROP_PX - 0.5)
    w = _WEIGHTS / _WEIGHTS.sum()
    src_mean = (w * src).sum()
    dst_mean = (w * dst).sum()
    s0, d0 = src - src_mean, dst - dst_mean
    denom = (w * np.abs(s0) ** 2).sum()
    if not np.isfinite(denom) or denom <= 1e-9:
        raise InvalidArgumentError("degenerate landmarks: cannot fit a face alignment")
    a = (w * np.conj(s0) * d0).sum() / denom  # complex: scale·e^{iθ}
    centre = (CROP_PX - 1) / 2.0
    frame_centre = (complex(centre, centre) - dst_mean) / a + src_mean
    return _Params(
        scale=float(abs(a)),
        angle_rad=float(np.angle(a)),
        center_x_px=float(frame_centre.real),
        center_y_px=float(frame_centre.imag),
    )


def _gaussian_smooth(values: np.ndarray, radius: int) -> np.ndarray:
    """Gaussian (σ = radius/2) moving average along axis 0, window truncated at the run's ends."""
    n = values.shape[0]
    if radius <= 0 or n < 2:
        return values.copy()
    sigma = max(radius / 2.0, 1e-6)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    out = np.empty_like(values)
    for i in range(n):
        lo, hi = max(0, i - radius), min(n, i + radius + 1)
        k = kernel[lo - i + radius : hi - i + radius]
        out[i] = (values[lo:hi] * k[:, None]).sum(axis=0) / k.sum()
    return out


class AlignmentSmoother:
    """Streaming temporal smoothing of the transform over runs of valid frames.

    Parameters smoothed: scale, unwrapped angle, and the frame point at the crop centre
    (smoothing that point instead of the raw matrix translation keeps rotation jitter out of
    the position). A run ends at an invalid observation (no face / low confidence), a gap in
    frame numbers, or :meth:`mark_cut`; smoothing never crosses a run's end. Frames are
    emitted in order once ``radius`` frames of look-ahead exist (or the run ended), so the
    latency is ``radius`` frames. Runs too short to smooth are still valid, just less smoothed.
    """

    def __init__(self, *, radius: int = 4):
        if radius < 0:
            raise InvalidArgumentError(f"smoothing radius must be >= 0 frames, got {radius}")
        self.radius = int(radius)
        self._run_index: list[int] = []  # frame indices of the current run
        self._run_params: list[np.ndarray] = []  # rows: scale, angle, cx, cy (all raw)
        self._emitted_in_run = 0
        self._last_frame_index: int | None = None

    def push(self, observation: FaceObservation) -> list[FaceAlignment]:
        """Add one frame's observation; returns the alignments now final (in frame order)."""
        out: list[FaceAlignment] = []
        idx = int(observation.frame_index)
        if self._last_frame_index is not None and idx != self._last_frame_index + 1:
            out += self._end_run()
        self._last_frame_index = idx
        params = None
        if observation.status is FaceStatus.OK and observation.landmarks is not None:
            try:
                params = _fit_params(observation.landmarks)
            except InvalidArgumentError:
                params = None
        if params is None:
            out += self._end_run()
            out.append(FaceAlignment(frame_index=idx, valid=False, matrix=None))
            return out
        row = np.array([params.scale, params.angle_rad, params.center_x_px, params.center_y_px])
        if self._run_params:
            # Unwrap the angle against the previous frame so smoothing never averages across ±π.
            prev = self._run_params[-1][1]
            row[1] = prev + (row[1] - prev + math.pi) % (2 * math.pi) - math.pi
        self._run_index.append(idx)
        self._run_params.append(row)
        out += self._emit(final=False)
        return out

    def mark_cut(self) -> list[FaceAlignment]:
        """A shot cut before the next pushed frame: finish the current run without smoothing across."""
        out = self._end_run()
        self._last_frame_index = None
        return out

    def flush(self) -> list[FaceAlignment]:
        """End of stream: everything still pending."""
        out = self._end_run()
        self._last_frame_index = None
        return out

    def _end_run(self) -> list[FaceAlignment]:
        out = self._emit(final=True)
        self._run_index.clear()
        self._run_params.clear()
        self._emitted_in_run = 0
        return out

    def _emit(self, *, final: bool) -> list[FaceAlignment]:
        n = len(self._run_index)
        ready = n if final else max(0, n - self.radius)
        if ready <= self._emitted_in_run:
            return []
        # Only the window that the pending frames need: bounded work per push.
        lo = max(0, self._emitted_in_run - self.radius)
        hi = min(n, ready + self.radius)
        smoothed = _gaussian_smooth(np.array(self._run_params[lo:hi]), self.radius)
        out = []
        for i in range(self._emitted_in_run, ready):
            s, ang, cx, cy = smoothed[i - lo]
            matrix = _Params(scale=s, angle_rad=ang, center_x_px=cx, center_y_px=cy).matrix()
            out.append(FaceAlignment(frame_index=self._run_index[i], valid=True, matrix=matrix))
        self._emitted_in_run = ready
        # Drop history no future frame's window can reach.
        drop = max(0, self._emitted_in_run - self.radius)
        if drop:
            del self._run_index[:drop]
            del self._run_params[:drop]
            self._emitted_in_run -= drop
        return out


def smooth_alignments(
    observations: Iterable[FaceObservation], *, radius: int = 4, cut_before: Iterable[int] = ()
) -> list[FaceAlignment]:
    """Alignments for a list of observations (one per observation, same order).

    ``cut_before``: frame indices that start a new shot; smoothing never crosses them.
    """
    cuts = set(int(c) for c in cut_before)
    smoother = AlignmentSmoother(radius=radius)
    out: list[FaceAlignment] = []
    for obs in observations:
        if int(obs.frame_index) in cuts:
            out += smoother.mark_cut()
        out += smoother.push(obs)
    out += smoother.flush()
    return out


def warp_crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size``×``size``×3 uint8 face crop for a frame→crop ``matrix`` made for that size.

    Only the crop's footprint in the frame is read (no full-frame copy). When the crop
    shrinks the face by more than 1.5×, that footprint is first reduced with INTER_AREA to
    about crop resolution, then rotated with INTER_LINEAR: area-averaged quality without the
    aliasing of a plain bilinear warp. Border: replicate.
    """
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.dtype != np.uint8:
        raise InvalidArgumentError(f"frame must be an H×W×C uint8 array, got {getattr(frame, 'shape', None)}")
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (2, 3) or not np.isfinite(m).all():
        raise InvalidArgumentError(f"matrix must be a finite 2×3 array, got shape {m.shape}")
    size = int(size)
    if size < 1:
        raise InvalidArgumentError(f"crop size must be positive, got {size}")
    h, w = frame.shape[:2]
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[-0.5, -0.5, 1], [size - 0.5, -0.5, 1], [-0.5, size - 0.5, 1], [size - 0.5, size - 0.5, 1]])
    fp = corners @ inv.T
    x0 = int(np.clip(math.floor(fp[:, 0].min()) - 2, 0, w - 1))
    y0 = int(np.clip(math.floor(fp[:, 1].min()) - 2, 0, h - 1))
    x1 = int(np.clip(math.ceil(fp[:, 0].max()) + 3, x0 + 1, w))
    y1 = int(np.clip(math.ceil(fp[:, 1].max()) + 3, y0 + 1, h))
    roi = frame[y0:y1, x0:x1]
    # Frame pixel p = roi pixel q + (x0, y0).
    m_roi = m.copy()
    m_roi[:, 2] += m[:, :2] @ np.array([x0, y0], dtype=np.float64)
    shrink = 1.0 / math.sqrt(abs(np.linalg.det(m[:, :2])))  # frame px per crop px
    if shrink > 1.5:
        rw, rh = x1 - x0, y1 - y0
        nw, nh = max(1, round(rw / shrink)), max(1, round(rh / shrink))
        fx, fy = nw / rw, nh / rh
        roi = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
        # Reduced pixel r ↔ roi pixel q = (r + 0.5) / f - 0.5.
        pre = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1]])
        m_roi = m_roi @ pre
    return cv2.warpAffine(roi, m_roi, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
