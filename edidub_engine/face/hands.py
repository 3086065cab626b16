"""Hands over the face, with MediaPipe's hand landmarker: the benchmark's occluded set (appendix C) counts them, and
a dub keeps a covered frame's own mouth and never takes a mouth from one (a moved mouth would erase the hand).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["CoverWatch", "HandOcclusionDetector", "landmarks_inside_hulls"]


def landmarks_inside_hulls(face_points: np.ndarray, hand_point_sets: Sequence[np.ndarray]) -> int:
    """How many face landmarks (``[N x 2]`` pixels) lie inside the convex hull of any hand.

    A landmark covered by two hands counts once.
    """
    if len(face_points) == 0 or not hand_point_sets:
        return 0
    covered = np.zeros(len(face_points), dtype=bool)
    for hand in hand_point_sets:
        hull = cv2.convexHull(np.asarray(hand, dtype=np.float32).reshape(-1, 1, 2))
        for i in np.flatnonzero(~covered):
            x, y = face_points[i]
            if cv2.pointPolygonTest(hull, (float(x), float(y)), False) >= 0:
                covered[i] = True
    return int(covered.sum())


class HandOcclusionDetector:
    """Counts face landmarks covered by hands, with MediaPipe's hand landmarker.

    Owns a MediaPipe graph: use as a context manager or call :meth:`close`.
    The hand model runs in tracking mode, so call it on consecutive frames of
    one shot and :meth:`reset` it at a cut.
    """

    def __init__(self, *, max_hands: int = 2, min_detection_confidence: float = 0.5, static: bool = False):
        import mediapipe as mp  # imported here: loading graphs at import time would slow every CLI call

        self._settings = dict(
            static_image_mode=static,
            max_num_hands=max_hands,
            model_complexity=1,
            min_detection_confidence=min_detection_confidence,
            min_tracking_confidence=0.5,
        )
        self._mp_hands = mp.solutions.hands
        self._hands = self._mp_hands.Hands(**self._settings)

    def hands(self, frame: np.ndarray) -> list[np.ndarray]:
        """Hand landmarks (``[21 x 2]`` pixels each) found in an RGB frame."""
        height, width = frame.shape[:2]
        result = self._hands.process(frame)
        out = []
        for hand in result.multi_hand_landmarks or []:
            pts = np.array([(p.x * width, p.y * height) for p in hand.landmark], dtype=np.float32)
            out.append(pts)
        return out

    def count(self, frame: np.ndarray, face_landmarks: np.ndarray | None) -> int:
        """Face landmarks covered by a hand in this frame (0 without a face)."""
        hands = self.hands(frame)
        if face_landmarks is None:
            return 0
        return landmarks_inside_hulls(np.asarray(face_landmarks)[:, :2], hands)

    def reset(self) -> None:
        self._hands.close()
        self._hands = self._mp_hands.Hands(**self._settings)

    def close(self) -> None:
        self._hands.close()

    def __enter__(self) -> "HandOcclusionDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CoverWatch:
    """Whether a hand covers a face's lower face, looked at every ``every``-th frame (hands move slower than frames
    come: a look holds for the frames until the next). Owns a hand graph: use as a context manager."""

    def __init__(self, *, every: int = 4):
        self.every = max(1, int(every))
        self._detector: HandOcclusionDetector | None = None
        self._hands: list[np.ndarray] = []
        self._seen = 0

    def covered(self, frame: np.ndarray, landmarks: np.ndarray | None) -> bool:
        """Frames in order; True when a hand lies over this face's lower face (below the nose tip)."""
        if self._seen % self.every == 0:
            if self._detector is None:
                self._detector = HandOcclusionDetector(static=True)
            self._hands = self._detector.hands(frame)
        self._seen += 1
        if landmarks is None or not self._hands:
            return False
        points = np.asarray(landmarks, np.float64)[:, :2]
        lower = points[points[:, 1] > points[4, 1]]  # below the nose tip (landmark 4)
        return landmarks_inside_hulls(lower, self._hands) > 0

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

    def __enter__(self) -> "CoverWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
