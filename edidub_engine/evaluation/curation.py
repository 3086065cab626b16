"""Benchmark-curation measures of the paper's appendix C, usable on any shot.

* Pose score (C.2): the largest absolute pitch, yaw or roll of the head over
  the sampled frames.  The paper reads the angles from MediaPipe's 3-D face
  landmarker transform; the legacy face-mesh solution we ship has no such
  output, so we read the head's axes off the mesh's own 3-D landmarks.
* Hand-over-face occlusion (C.3): the number of face landmarks that fall inside
  the convex hull of a detected hand.  The paper calls a video occluded when the
  total over its sampled frames exceeds 30 landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

#: Paper C.3: a video whose summed per-frame occlusion count exceeds this is "occluded".
OCCLUDED_TOTAL_LANDMARKS = 30
#: Paper C.2 rejects front-facing candidates whose pose score exceeds a threshold
#: (the figure is lost from our copy of the text); we report the score and let the caller decide.

# Face-mesh indices: (image-left, image-right) pairs of a frontal face, forehead and chin.
_SYMMETRIC_PAIRS = ((33, 263), (61, 291), (234, 454))
_FOREHEAD, _CHIN = 10, 152


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees: pitch (nod), yaw (turn), roll (tilt); zero is frontal."""

    pitch_deg: float
    yaw_deg: float
    roll_deg: float

    @property
    def max_abs_deg(self) -> float:
        return max(abs(self.pitch_deg), abs(self.yaw_deg), abs(self.roll_deg))


def head_pose(landmarks: np.ndarray) -> HeadPose:
    """Estimate the head pose from face-mesh landmarks ``[478|468 x 3]`` (x, y, z in pixels).

    The face mesh regresses a 3-D surface, so the head's own axes can be read
    from it directly: left-right from three symmetric landmark pairs (eye
    corners, mouth corners, cheek edges), up-down from forehead to chin.  This
    needs no camera model and has no mirror-image ambiguity, unlike a
    perspective-n-point fit of a generic head.
    """
    pts = np.asarray(landmarks, dtype=np.float64)[:, :3]
    across = sum(_unit(pts[right] - pts[left]) for left, right in _SYMMETRIC_PAIRS)
    x_axis = _unit(across)
    down = pts[_CHIN] - pts[_FOREHEAD]
    y_axis = _unit(down - x_axis * float(down @ x_axis))
    z_axis = np.cross(x_axis, y_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
    pitch, yaw, roll = Rotation.from_matrix(rotation).as_euler("xyz", degrees=True)
    return HeadPose(float(pitch), float(yaw), float(roll))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


def pose_score(poses: Sequence[HeadPose]) -> float | None:
    """Paper eq. 3: the maximum absolute angle over all axes and frames (None when no pose)."""
    values = [p.max_abs_deg for p in poses if np.isfinite(p.max_abs_deg)]
    return max(values) if values else None


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
