"""The paper's metrics (section 4.1, appendix A) as plain arithmetic on arrays.

Networks produce embeddings (:mod:`.networks`); everything here is the
arithmetic on top, so tests can check it against hand-computed answers.

* ID-P: per frame, the cosine distance between the face embedding of the
  original frame and of the dubbed frame; ID-TC: per pair of consecutive dubbed
  frames, the cosine distance between their embeddings.  Both are averaged
  with softmax weights over the per-frame scores, ``sum_i softmax(s)_i * s_i``,
  so that a few bad frames weigh more than their share (section 4.1).
* LSE-D / LSE-C: SyncNet's evaluation (Chung & Zisserman; Prajwal et al.).  For
  every offset ``o`` in ``[-15, 15]`` video frames, the mean over frames of the
  distance between the video embedding at ``t`` and the audio embedding at
  ``t + o``; LSE-D is the smallest mean distance, LSE-C is the median over
  offsets minus that minimum, and the offset is where the minimum lies.
* PSNR / SSIM inside and outside a mask, mean ± standard error, and the
  one-sided Wilcoxon signed-rank test of appendix A.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

#: SyncNet evaluates offsets of up to ±15 video frames.
SYNC_MAX_OFFSET = 15


# ----------------------------------------------------------------------------- averaging
def softmax(scores: Sequence[float] | np.ndarray, temperature: float = 1.0) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64) / float(temperature)
    e = np.exp(s - s.max())
    return e / e.sum()


def softmax_weighted_mean(scores: Sequence[float] | np.ndarray, temperature: float = 1.0) -> float:
    """``sum_i softmax(s / T)_i * s_i`` — the paper's average for ID-P and ID-TC (T = 1 in the paper)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return float("nan")
    return float(np.sum(softmax(s, temperature) * s))


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``1 - cos(a_i, b_i)`` for ``[N, D]`` arrays (or two vectors)."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, axis=1) / np.maximum(na * nb, 1e-12)
    return 1.0 - np.clip(cos, -1.0, 1.0)


@dataclass(frozen=True)
class FrameMetric:
    """A softmax-weighted score with its per-frame values (NaN where a frame had no face)."""

    value: float
    per_frame: np.ndarray

    def to_dict(self) -> dict:
        return {"value": self.value, "per_frame": [None if not np.isfinite(v) else round(float(v), 6) for v in self.per_frame]}


def id_preservation(original: np.ndarray, dubbed: np.ndarray, *, temperature: float = 1.0) -> FrameMetric:
    """ID-P: frame-wise cosine distance of original vs dubbed embeddings ``[N, D]``, softmax-weighted.

    Rows that are not finite (no face in that frame) are left out of the average.
    """
    original, dubbed = np.asarray(original, np.float64), np.asarray(dubbed, np.float64)
    if original.shape != dubbed.shape:
        raise ValueError(f"ID-P needs one embedding per frame on both sides, got {original.shape} and {dubbed.shape}")
    per = np.full(len(original), np.nan)
    ok = np.isfinite(original).all(axis=1) & np.isfinite(dubbed).all(axis=1)
    if ok.any():
        per[ok] = cosine_distance(original[ok], dubbed[ok])
    return FrameMetric(softmax_weighted_mean(per[ok], temperature) if ok.any() else float("nan"), per)


def id_temporal_consistency(dubbed: np.ndarray, *, temperature: float = 1.0) -> FrameMetric:
    """ID-TC: cosine distance between embeddings of consecutive frames ``t-1, t`` (per_frame[t], NaN at 0)."""
    e = np.asarray(dubbed, np.float64)
    per = np.full(len(e), np.nan)
    if len(e) >= 2:
        ok = np.isfinite(e[1:]).all(axis=1) & np.isfinite(e[:-1]).all(axis=1)
        if ok.any():
            per[1:][ok] = cosine_distance(e[1:][ok], e[:-1][ok])
    valid = per[np.isfinite(per)]
    return FrameMetric(softmax_weighted_mean(valid, temperature) if valid.size else float("nan"), per)


# ----------------------------------------------------------------------------- sync
@dataclass(frozen=True)
class SyncScore:
    """SyncNet-style evaluation of a clip: LSE-D, LSE-C and the best offset (audio lag in frames)."""

    lse_d: float
    lse_c: float
    offset: int
    mean_distance: np.ndarray  # per offset, offsets[i] = i - max_offset
    max_offset: int

    @property
    def offsets(self) -> np.ndarray:
        return np.arange(-self.max_offset, self.max_offset + 1)

    def to_dict(self) -> dict:
        return {"lse_d": self.lse_d, "lse_c": self.lse_c, "offset": self.offset,
                "mean_distance": [round(float(v), 6) for v in self.mean_distance]}


def sync_distances(
    video: np.ndarray,
    audio: np.ndarray,
    *,
    max_offset: int = SYNC_MAX_OFFSET,
    metric: Literal["cosine", "euclidean"] = "cosine",
) -> np.ndarray:
    """``[2*max_offset+1]`` mean distance between ``video[t]`` and ``audio[t + o]`` for each offset ``o``.

    The mean runs over the frames where both exist (SyncNet pads the audio with
    zeros instead; a zero vector has no direction, so we leave the edge out).
    ``metric``: ``"cosine"`` as the paper (ModEFormer's normalised space),
    ``"euclidean"`` as syncnet_python.
    """
    v = np.asarray(video, np.float64)
    a = np.asarray(audio, np.float64)
    n = min(len(v), len(a))
    out = np.full(2 * max_offset + 1, np.nan)
    for i, o in enumerate(range(-max_offset, max_offset + 1)):
        t0, t1 = max(0, -o), min(n, n - o)
        if t1 - t0 < 1:
            continue
        vv, aa = v[t0:t1], a[t0 + o : t1 + o]
        d = cosine_distance(vv, aa) if metric == "cosine" else np.linalg.norm(vv - aa, axis=1)
        out[i] = d.mean()
    return out


def lse(video: np.ndarray, audio: np.ndarray, *, max_offset: int = SYNC_MAX_OFFSET,
        metric: Literal["cosine", "euclidean"] = "cosine") -> SyncScore:
    """LSE-D (min over offsets of the mean distance) and LSE-C (median minus min) from embeddings ``[N, D]``."""
    dist = sync_distances(video, audio, max_offset=max_offset, metric=metric)
    finite = np.isfinite(dist)
    if not finite.any():
        raise ValueError("too few frames for a sync score")
    i = int(np.nanargmin(dist))
    minimum = float(dist[i])
    return SyncScore(lse_d=minimum, lse_c=float(np.median(dist[finite]) - minimum), offset=i - max_offset,
                     mean_distance=dist, max_offset=max_offset)


# ----------------------------------------------------------------------------- pixels
def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, *, peak: float = 255.0) -> float:
    """PSNR in dB over the pixels where ``mask`` is true (all pixels without a mask); inf when identical."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = (a - b) ** 2
    if mask is not None:
        m = np.asarray(mask, bool)
        if not m.any():
            return float("nan")
        diff = diff[m]
    mse = float(diff.mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, *, peak: float = 255.0) -> np.ndarray:
    """Per-pixel SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5), averaged over colour channels."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    out = np.zeros(a.shape[:2])
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    for c in range(a.shape[2]):
        x, y = a[..., c], b[..., c]
        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        out += ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return out / a.shape[2]


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM over the pixels where ``mask`` is true (all without one)."""
    m = ssim_map(a, b)
    if mask is None:
        return float(m.mean())
    mask = np.asarray(mask, bool)
    return float(m[mask].mean()) if mask.any() else float("nan")


# ----------------------------------------------------------------------------- statistics
def mean_and_standard_error(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample std / sqrt(n)); finite values only."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(v.size))


def significance_stars(p: float) -> str:
    """Appendix A's marks: ns (p ≥ 0.05), * (< 0.05), ** (< 0.01), *** (< 0.001)."""
    if not np.isfinite(p) or p >= 0.05:
        return "ns"
    return "***" if p < 0.001 else "**" if p < 0.01 else "*"


def wilcoxon_one_sided(ours: Sequence[float], theirs: Sequence[float], *, lower_is_better: bool) -> float:
    """p-value of the one-sided Wilcoxon signed-rank test that ``ours`` scores better than ``theirs``.

    Paired over the same clips (appendix A); pairs where either side is missing are dropped.
    H0: no difference; H1: ours is lower (``lower_is_better``) or higher.
    """
    from scipy.stats import wilcoxon

    pairs = [(a, b) for a, b in zip(ours, theirs, strict=True)
             if a is not None and b is not None and np.isfinite(a) and np.isfinite(b)]
    if len(pairs) < 2:
        return float("nan")
    x = np.array([a for a, _ in pairs]) - np.array([b for _, b in pairs])
    if np.all(x == 0):
        return 1.0
    return float(wilcoxon(x, alternative="less" if lower_is_better else "greater").pvalue)


__all__ = [
    "SYNC_MAX_OFFSET",
    "FrameMetric",
    "SyncScore",
    "cosine_distance",
    "id_preservation",
    "id_temporal_consistency",
    "lse",
    "mean_and_standard_error",
    "psnr",
    "significance_stars",
    "softmax",
    "softmax_weighted_mean",
    "ssim",
    "ssim_map",
    "sync_distances",
    "wilcoxon_one_sided",
]
