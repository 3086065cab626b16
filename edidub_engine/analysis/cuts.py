"""Hard-cut detection from colour histograms of consecutive frames.

Why here and not a library: the analysis already decodes every frame; a
hue/saturation histogram of a thumbnail costs well under a millisecond and
needs nothing beyond OpenCV.  A cut is a frame whose histogram distance to the
previous one is both large in absolute terms and large against the recent
motion of the shot, so fast camera moves and flashes inside a shot are not cuts.
"""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np

_THUMB = (64, 36)


class CutDetector:
    """Streaming detector: feed frames in order, get True on the first frame of a new shot."""

    def __init__(self, *, threshold: float = 0.35, ratio: float = 3.0, history: int = 12):
        self.threshold = threshold
        self.ratio = ratio
        self._recent: deque[float] = deque(maxlen=history)
        self._previous: np.ndarray | None = None

    @staticmethod
    def signature(frame: np.ndarray) -> np.ndarray:
        thumb = cv2.resize(frame, _THUMB, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumb, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        return cv2.normalize(hist, hist).flatten()

    def is_cut(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` starts a new shot (never for the first frame seen)."""
        current = self.signature(frame)
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        distance = float(cv2.compareHist(previous, current, cv2.HISTCMP_BHATTACHARYYA))
        typical = float(np.median(self._recent)) if self._recent else 0.0
        cut = distance > self.threshold and distance > self.ratio * typical
        if cut:
            self._recent.clear()
        else:
            self._recent.append(distance)
        return cut
