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

import numpy as np
from scipy.spatial.transform import Rotation

from ..face.hands import HandOcclusionDetector, landmarks_inside_hulls  # noqa: F401 - where curation and the QC report find them

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


