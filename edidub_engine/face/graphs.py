"""MediaPipe's two graphs as the trackers run them: the full-range detector on a downscaled frame,
and the face mesh on a square crop around one face.

One home for both, because :class:`~edidub_engine.face.tracking.FaceTracker` (one face) and
:class:`~edidub_engine.face.faces.MultiFaceTracker` (several faces with identities) must find and
place faces the same way. Why each step:

* The **full-range detector** (``solutions.face_detection``, ``model_selection=1``) finds faces,
  because the face mesh alone misses small faces (on ``hamilton_mic_occlusion.mp4``, ~40 px faces:
  mesh alone 16/28 frames, full-range detector 27/28). It sees the frame downscaled to at most
  :data:`DETECT_LONG_SIDE_PX` (it works at 192 px inside anyway).
* The **face mesh** (tracking mode, ``refine_landmarks=True`` → 478 points) runs on a small square
  crop (:data:`MESH_CROP_PX`) around the face, taken from the previous frame's landmarks or from a
  detection: small faces are enlarged for the mesh, large faces cost no full-frame work, and the
  face sits at the same place in consecutive crops so the mesh's own tracking stays locked. A
  :class:`CropMesh` holds one graph, whose tracking state belongs to one person: a tracker of
  several faces keeps one per face.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = [
    "Box",
    "CropMesh",
    "Detections",
    "FaceDetector",
    "NUM_LANDMARKS",
    "box_area",
    "FrameTracker",
    "check_frame",
    "check_settings",
    "iou",
    "landmark_box",
    "plausible_step",
]

NUM_LANDMARKS = 478
"""Refined MediaPipe face mesh: 468 face points + 10 iris points."""

DETECT_LONG_SIDE_PX = 640
"""The detector sees the frame downscaled to this long side (it resamples to 192 px itself)."""

MESH_CROP_PX = 256
"""Side of the square crop the face mesh runs on (the landmark model's input is 192 px)."""

CROP_FROM_LANDMARKS = 1.6
"""Crop side / max extent of the previous landmarks (the mesh wants the face with ~25 % margin)."""

CROP_FROM_DETECTION = 2.2
"""Crop side / max side of a detector box (the box is tight: brows to chin, no forehead/ears)."""

Box = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in native frame pixels."""


def box_area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def landmark_box(landmarks: np.ndarray) -> Box:
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


def check_frame(frame: np.ndarray, frame_index: int) -> None:
    """Refuse anything but an H×W×3 uint8 RGB frame, naming the frame."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidArgumentError(
            f"frame {frame_index}: expected an H×W×3 uint8 RGB array, got "
            f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
        )


def check_settings(min_confidence: float, detect_every: int, max_lost_frames: int) -> None:
    """Refuse tracker settings that mean nothing (both trackers take the same three)."""
    if not 0.0 <= min_confidence <= 1.0:
        raise InvalidArgumentError(f"min_confidence must be in [0, 1], got {min_confidence}")
    if detect_every < 1:
        raise InvalidArgumentError(f"detect_every must be >= 1, got {detect_every}")
    if max_lost_frames < 0:
        raise InvalidArgumentError(f"max_lost_frames must be >= 0, got {max_lost_frames}")


def plausible_step(previous: np.ndarray | None, landmarks: np.ndarray, consecutive: bool) -> bool:
    """False for landmarks no real face produces: degenerate, or (after ``previous`` of the frame just
    before, when ``consecutive``) a jump or size change in one frame."""
    box = landmark_box(landmarks)
    size = math.hypot(box[2] - box[0], box[3] - box[1])
    if not np.isfinite(landmarks).all() or size < 8.0:
        return False
    if previous is None or not consecutive:
        return True
    pbox = landmark_box(previous)
    psize = math.hypot(pbox[2] - pbox[0], pbox[3] - pbox[1])
    ratio = size / max(psize, 1e-6)
    if not 0.75 <= ratio <= 1.33:
        return False
    shift = math.hypot((box[0] + box[2] - pbox[0] - pbox[2]) / 2, (box[1] + box[3] - pbox[1] - pbox[3]) / 2)
    return shift <= 0.35 * max(size, psize)


@dataclass
class Detections:
    """One detector run: face boxes in native frame pixels and their confidence scores."""

    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class FaceDetector:
    """The full-range detector; faces scoring at least ``floor`` are returned (models load here, never at import)."""

    def __init__(self, floor: float):
        import mediapipe as mp  # imported here: loading MediaPipe is slow and pulls models

        self._graph: Any = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=floor)

    def detect(self, frame: np.ndarray) -> Detections:
        h, w = frame.shape[:2]
        factor = max(1, math.ceil(max(h, w) / DETECT_LONG_SIDE_PX))
        if factor > 1:
            small = cv2.resize(frame, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        else:
            small = frame
        result = self._graph.process(small)
        out = Detections()
        for det in result.detections or []:
            rb = det.location_data.relative_bounding_box
            # Relative coordinates: the same on the small and the native frame.
            x0, y0 = rb.xmin * w, rb.ymin * h
            x1, y1 = x0 + rb.width * w, y0 + rb.height * h
            box = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            out.boxes.append(box)
            out.scores.append(float(det.score[0]) if det.score else 0.0)
        return out

    def close(self) -> None:
        self._graph.close()


class CropMesh:
    """The face mesh (tracking mode) on a square crop around one face; one graph follows one person."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._graph: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def reset(self) -> None:
        """Forget the mesh's own tracking state (another person, or a cut)."""
        self._graph.reset()

    def close(self) -> None:
        self._graph.close()

    def on(self, frame: np.ndarray, box: Box, margin: float, hide: Sequence[Box] = ()) -> np.ndarray | None:
        """Run the mesh on a square crop ``margin`` times ``box``'s long side; (478, 3) landmarks in frame
        pixels (x, y in OpenCV's convention, z in the same pixel scale), or None.

        ``hide``: other people's faces, blacked out in the crop (outside ``box``) so that the mesh, which
        places the face it sees best, cannot take a neighbour for this person."""
        h, w = frame.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * margin
        side = max(side, 16.0)
        x0, y0 = int(math.floor(cx - side / 2)), int(math.floor(cy - side / 2))
        side_i = int(math.ceil(side))
        scale = MESH_CROP_PX / side_i
        # Slice only the ROI (a view: no full-frame copy) and resize it into a black canvas.
        sx0, sy0 = max(0, x0), max(0, y0)
        sx1, sy1 = min(w, x0 + side_i), min(h, y0 + side_i)
        if sx1 - sx0 < 2 or sy1 - sy0 < 2:
            return None
        canvas = np.zeros((MESH_CROP_PX, MESH_CROP_PX, 3), np.uint8)
        dx0 = int(round((sx0 - x0) * scale))
        dy0 = int(round((sy0 - y0) * scale))
        dx1 = min(MESH_CROP_PX, int(round((sx1 - x0) * scale)))
        dy1 = min(MESH_CROP_PX, int(round((sy1 - y0) * scale)))
        if dx1 - dx0 < 2 or dy1 - dy0 < 2:
            return None
        roi = frame[sy0:sy1, sx0:sx1]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        canvas[dy0:dy1, dx0:dx1] = cv2.resize(roi, (dx1 - dx0, dy1 - dy0), interpolation=interp)
        if hide:
            def to_canvas(b: Box) -> tuple[int, int, int, int]:
                return tuple(int(np.clip(round((v - o) * scale), 0, MESH_CROP_PX)) for v, o in zip(b, (x0, y0, x0, y0)))

            covered = np.zeros((MESH_CROP_PX, MESH_CROP_PX), bool)
            for other in hide:
                a0, b0, a1, b1 = to_canvas(other)
                covered[b0:b1, a0:a1] = True
            a0, b0, a1, b1 = to_canvas(box)
            covered[b0:b1, a0:a1] = False
            canvas[covered] = 0
        result = self._graph.process(canvas)
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        pts = np.array([(p.x, p.y, p.z) for p in lm], dtype=np.float32)
        if pts.shape[0] != NUM_LANDMARKS:
            return None
        # Canvas pixel u ↔ ROI pixel (u - dx0) * (roi_w / (dx1 - dx0)) ↔ frame pixel sx0 + that.
        kx = (sx1 - sx0) / (dx1 - dx0)
        ky = (sy1 - sy0) / (dy1 - dy0)
        # MediaPipe's normalised coordinates are continuous (pixel i spans [i, i+1)); the
        # -0.5 moves them to OpenCV's convention, where pixel centres are integers.
        pts[:, 0] = sx0 + (pts[:, 0] * MESH_CROP_PX - dx0) * kx - 0.5
        pts[:, 1] = sy0 + (pts[:, 1] * MESH_CROP_PX - dy0) * ky - 0.5
        pts[:, 2] = pts[:, 2] * MESH_CROP_PX * kx  # MediaPipe z is in units of the input width
        return pts


class FrameTracker:
    """What both trackers share: a context manager over their graphs, a stream over frames, the check of each frame."""

    _closed: bool

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def process(self, frame: np.ndarray, frame_index: int):
        raise NotImplementedError

    def track(self, frames: Iterable[tuple[int, np.ndarray]]) -> Iterator:
        """Stream one result per ``(frame_index, frame)`` pair, in order."""
        for frame_index, frame in frames:
            yield self.process(frame, frame_index)

    def _frame_index(self, frame: np.ndarray, frame_index: int) -> int:
        """The frame's number, once the tracker is open and the frame an H×W×3 uint8 RGB array."""
        if self._closed:
            raise InvalidArgumentError(f"{type(self).__name__} is closed")
        check_frame(frame, frame_index)
        return int(frame_index)
