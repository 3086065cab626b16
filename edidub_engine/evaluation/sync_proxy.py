"""A lip-sync proxy that needs no foreign weights: mouth opening against speech energy.

Per frame, the mouth opening is the gap between the inner lips (face-mesh
landmarks 13 and 14) divided by the distance between the outer eye corners
(33 and 263), so it does not depend on the face's size in the frame.  The
speech envelope is the RMS energy (in dB) of the audio under each frame.  Open
mouths go with loud speech, so their Pearson correlation is positive for a
well-synced clip and near zero for a clip whose mouth ignores its sound.  We
report the correlation at zero lag and the best one within ±``max_lag``
frames (with its lag), like SyncNet's offset search.  It is coarse — it cannot
tell an "o" from an "a" — but it runs anywhere and never needs a download.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..mouth.shape import mouth_opening  # one definition of the opening, shared with the render's QC


def energy_envelope(audio: np.ndarray, sample_rate_hz: int, frames: int, fps: float, *, floor_db: float = -80.0) -> np.ndarray:
    """``[frames]`` RMS level in dB of the audio under each video frame (audio starts at frame 0)."""
    a = np.asarray(audio, np.float64)
    out = np.full(frames, floor_db)
    for k in range(frames):
        s0, s1 = int(round(k / fps * sample_rate_hz)), int(round((k + 1) / fps * sample_rate_hz))
        seg = a[s0:s1]
        if seg.size:
            out[k] = max(floor_db, 10 * np.log10(np.mean(seg * seg) + 1e-12))
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return float("nan")
    x, y = x[ok] - x[ok].mean(), y[ok] - y[ok].mean()
    d = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / d) if d > 0 else float("nan")


@dataclass(frozen=True)
class SyncProxy:
    correlation: float  # at zero lag
    best_correlation: float
    best_lag: int  # frames; positive: the mouth follows the sound
    opening: np.ndarray
    envelope: np.ndarray

    def to_dict(self) -> dict:
        r = lambda v: None if not np.isfinite(v) else round(float(v), 5)  # noqa: E731
        return {"correlation": r(self.correlation), "best_correlation": r(self.best_correlation), "best_lag": self.best_lag}


def sync_proxy(opening: np.ndarray, envelope: np.ndarray, *, max_lag: int = 5) -> SyncProxy:
    """Correlation of mouth opening with the speech envelope, at zero lag and the best lag in ±``max_lag``."""
    o, e = np.asarray(opening, np.float64), np.asarray(envelope, np.float64)
    n = min(len(o), len(e))
    o, e = o[:n], e[:n]
    best, best_lag = float("nan"), 0
    for lag in range(-max_lag, max_lag + 1):
        c = _pearson(o[max(0, lag) : n + min(0, lag)], e[max(0, -lag) : n - max(0, lag)])
        if np.isfinite(c) and (not np.isfinite(best) or c > best):
            best, best_lag = c, lag
    return SyncProxy(_pearson(o, e), best, best_lag, o, e)


__all__ = ["SyncProxy", "energy_envelope", "mouth_opening", "sync_proxy"]
