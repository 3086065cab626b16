"""Face tracking: one person's 478 MediaPipe landmarks per frame, in native frame pixels.

Method (why each step):

* The **full-range detector** (``solutions.face_detection``, ``model_selection=1``) finds
  faces, because the face mesh alone misses small faces (on ``hamilton_mic_occlusion.mp4``
  ~40 px faces: mesh alone 16/28 frames, full-range detector 27/28). It runs on a frame
  downscaled to at most :data:`DETECT_LONG_SIDE_PX` (it works at 192 px inside anyway), only
  when there is no track, when the mesh loses the face, and every ``detect_every`` frames to
  refresh the confidence score and the face count.
* The **face mesh** (tracking mode, ``refine_landmarks=True`` → 478 points) runs on a small
  square crop (:data:`MESH_CROP_PX`) around the face, taken from the previous frame's
  landmarks or from the detection. Small faces are thereby enlarged for the mesh, large
  faces cost no full-frame work, and the face sits at the same place in consecutive crops so
  the mesh's own tracking stays locked.
* The **selector** picks a face only when a track starts (first frame, after :meth:`FaceTracker.reset`,
  or after the tracked face was lost for ``max_lost_frames``); meanwhile the tracker follows
  the same person by box overlap, not whichever face is largest now.

A frame without a face, or with a doubtful one, is *marked* (:class:`FaceStatus`), never an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import face_selector_parts

__all__ = [
    "FaceStatus",
    "FaceObservation",
    "SelectorMode",
    "FaceSelector",
    "FaceTracker",
    "NUM_LANDMARKS",
]

NUM_LANDMARKS = 478
"""Refined MediaPipe face mesh: 468 face points + 10 iris points."""

DETECT_LONG_SIDE_PX = 640
"""The detector sees the frame downscaled to this long side (it resamples to 192 px itself)."""

MESH_CROP_PX = 256
"""Side of the square crop the face mesh runs on (the landmark model's input is 192 px)."""

_CROP_FROM_LANDMARKS = 1.6
"""Crop side / max extent of the previous landmarks (the mesh wants the face with ~25 % margin)."""

_CROP_FROM_DETECTION = 2.2
"""Crop side / max side of a detector box (the box is tight: brows to chin, no forehead/ears)."""

_MIN_FOLLOW_IOU = 0.2
"""A detector box belongs to the followed person when it overlaps the last box this much."""

Box = tuple[float, float, float, float]


class FaceStatus(str, Enum):
    """What the tracker can say about one frame."""

    OK = "ok"
    NO_FACE = "no_face"
    LOW_CONFIDENCE = "low_confidence"


@dataclass
class FaceObservation:
    """One frame's tracking result.

    ``landmarks``: (478, 3) float32, x and y in native frame pixels (OpenCV convention: the
    centre of the top-left pixel is (0, 0)), z in the same pixel scale (MediaPipe's relative depth times the crop side), or None when no landmarks.
    ``box``: (x0, y0, x1, y1) frame pixels of the tracked face (landmark extent when there
    are landmarks, else the detector box), or None. ``score``: detector confidence of the
    tracked face at its most recent detection (0 when that detection did not see it).
    ``num_faces``: faces the detector saw at its most recent run.
    """

    frame_index: int
    status: FaceStatus
    landmarks: np.ndarray | None = None
    box: Box | None = None
    score: float = 0.0
    num_faces: int = 0

    @property
    def ok(self) -> bool:
        return self.status is FaceStatus.OK


class SelectorMode(str, Enum):
    LARGEST = "largest"
    INDEX = "index"
    POINT = "point"


@dataclass(frozen=True)
class FaceSelector:
    """Which face to follow when a track starts.

    ``largest``: the biggest detector box. ``index``: the n-th face counted left to right
    from 0 (by box centre). ``point``: the face whose box contains (x, y) frame pixels, else
    the face whose box centre is nearest.
    """

    mode: SelectorMode = SelectorMode.LARGEST
    index: int | None = None
    point_px: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.mode is SelectorMode.INDEX and (self.index is None or self.index < 0):
            raise InvalidArgumentError(
                f"face index must be a non-negative integer, got {self.index!r}",
                hint="faces are counted left to right from 0",
            )
        if self.mode is SelectorMode.POINT and self.point_px is None:
            raise InvalidArgumentError("a point selector needs x,y pixel coordinates", hint='e.g. "640,360"')

    @classmethod
    def largest(cls) -> FaceSelector:
        return cls(mode=SelectorMode.LARGEST)

    @classmethod
    def nth(cls, index: int) -> FaceSelector:
        return cls(mode=SelectorMode.INDEX, index=int(index))

    @classmethod
    def at_point(cls, x_px: float, y_px: float) -> FaceSelector:
        return cls(mode=SelectorMode.POINT, point_px=(float(x_px), float(y_px)))

    @classmethod
    def parse(cls, text: str | int | FaceSelector) -> FaceSelector:
        """``"largest"``, ``"1"`` (index, left to right from 0) or ``"640,360"`` (a point in pixels)."""
        if isinstance(text, FaceSelector):
            return text
        kind, *values = face_selector_parts(text)
        if kind == "index":
            return cls.nth(values[0])
        if kind == "point":
            return cls.at_point(*values)
        return cls.largest()

    def __str__(self) -> str:
        """The selector as ``parse`` reads it (``largest``, ``1``, ``640,360``): what reports and keys show."""
        if self.mode is SelectorMode.INDEX:
            return str(self.index)
        if self.mode is SelectorMode.POINT:
            return f"{self.point_px[0]:g},{self.point_px[1]:g}"
        return "largest"

    def choose(self, boxes: list[Box]) -> int | None:
        """Index into ``boxes`` of the selected face, or None (e.g. index beyond the faces seen)."""
        if not boxes:
            return None
        if self.mode is SelectorMode.LARGEST:
            return max(range(len(boxes)), key=lambda i: _box_area(boxes[i]))
        if self.mode is SelectorMode.INDEX:
            order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0] + boxes[i][2]) / 2)
            assert self.index is not None
            return order[self.index] if self.index < len(order) else None
        assert self.point_px is not None
        px, py = self.point_px
        inside = [i for i, b in enumerate(boxes) if b[0] <= px <= b[2] and b[1] <= py <= b[3]]
        if inside:
            return min(inside, key=lambda i: _box_area(boxes[i]))  # the innermost, if boxes nest
        return min(
            range(len(boxes)),
            key=lambda i: ((boxes[i][0] + boxes[i][2]) / 2 - px) ** 2 + ((boxes[i][1] + boxes[i][3]) / 2 - py) ** 2,
        )


def _box_area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = _box_area(a) + _box_area(b) - inter
    return inter / union if union > 0 else 0.0


def _landmark_box(landmarks: np.ndarray) -> Box:
    x0, y0 = landmarks[:, :2].min(axis=0)
    x1, y1 = landmarks[:, :2].max(axis=0)
    return (float(x0), float(y0), float(x1), float(y1))


@dataclass
class _Track:
    """State of the person being followed."""

    box: Box
    landmarks: np.ndarray | None
    score: float
    detected_box: Box | None = None  # detector box of this person in the current frame, if it ran
    last_frame_index: int = -(10**9)
    lost_frames: int = 0
    frames_since_detect: int = 0


@dataclass
class _Detection:
    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class FaceTracker:
    """Follows one face through a shot; owns MediaPipe graphs (use as a context manager).

    Models load on construction, never at import. ``min_confidence``: below this detector
    score a seen face is LOW_CONFIDENCE. ``detect_every``: frames between detector runs while
    tracking (catches new faces/cuts and refreshes the score). ``max_lost_frames``: how long
    the tracked person may be missing before the selector may pick someone else.
    """

    def __init__(
        self,
        *,
        selector: FaceSelector | str = FaceSelector.largest(),
        min_confidence: float = 0.5,
        detect_every: int = 8,
        max_lost_frames: int = 12,
        detector_floor: float = 0.2,
    ):
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidArgumentError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if detect_every < 1:
            raise InvalidArgumentError(f"detect_every must be >= 1, got {detect_every}")
        if max_lost_frames < 0:
            raise InvalidArgumentError(f"max_lost_frames must be >= 0, got {max_lost_frames}")
        self.selector = FaceSelector.parse(selector)
        self.min_confidence = float(min_confidence)
        self.detect_every = int(detect_every)
        self.max_lost_frames = int(max_lost_frames)
        # Faces below min_confidence but above this floor are reported LOW_CONFIDENCE, not missed.
        self._detector_floor = min(float(detector_floor), self.min_confidence)

        import mediapipe as mp  # imported here: loading MediaPipe is slow and pulls models

        self._detector: Any = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=self._detector_floor
        )
        self._mesh: Any = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False,
            max_num_faces=1,
            refine_landmarks=True,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._track: _Track | None = None
        self._num_faces = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FaceTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        if not self._closed:
            self._detector.close()
            self._mesh.close()
            self._closed = True

    def reset(self) -> None:
        """Forget the tracked person (call at a shot cut); the selector picks again."""
        self._track = None
        self._num_faces = 0
        if not self._closed:
            self._mesh.reset()

    # -- tracking --------------------------------------------------------------------------
    def track(self, frames: Iterable[tuple[int, np.ndarray]]) -> Iterator[FaceObservation]:
        """Stream observations for ``(frame_index, frame)`` pairs, one per frame, in order."""
        for frame_index, frame in frames:
            yield self.process(frame, frame_index)

    def process(self, frame: np.ndarray, frame_index: int) -> FaceObservation:
        """Track one H×W×3 uint8 RGB frame at native size."""
        if self._closed:
            raise InvalidArgumentError("FaceTracker is closed")
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InvalidArgumentError(
                f"frame {frame_index}: expected an H×W×3 uint8 RGB array, got "
                f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
            )
        frame_index = int(frame_index)
        track = self._track
        if track is not None and frame_index != track.last_frame_index + 1:
            # A gap in the frame numbers: the previous landmarks say little about this frame.
            track.landmarks = None

        detection: _Detection | None = None
        if track is None or track.landmarks is None or track.frames_since_detect >= self.detect_every:
            detection = self._detect(frame)
            track = self._follow_or_select(detection)

        landmarks: np.ndarray | None = None
        if track is not None and track.landmarks is not None:
            landmarks = self._mesh_on(frame, _landmark_box(track.landmarks), _CROP_FROM_LANDMARKS)
            if landmarks is None and detection is None:
                # The mesh lost the face between detector runs: fall back to the detector now.
                detection = self._detect(frame)
                track = self._follow_or_select(detection)
        target = track.detected_box if track is not None else None
        if landmarks is None and target is not None:
            landmarks = self._mesh_on(frame, target, _CROP_FROM_DETECTION)
        return self._update(frame_index, landmarks)

    def mesh_near(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """The face mesh where ``landmarks`` (of this or a nearby frame) put the face, without the detector or the
        track: how QC reads a written frame's mouth where the source's face is. None when no face is there."""
        if self._closed:
            raise InvalidArgumentError("FaceTracker is closed")
        return self._mesh_on(frame, _landmark_box(np.asarray(landmarks, np.float32)), _CROP_FROM_LANDMARKS)

    # -- internals -------------------------------------------------------------------------
    def _detect(self, frame: np.ndarray) -> _Detection:
        h, w = frame.shape[:2]
        factor = max(1, math.ceil(max(h, w) / DETECT_LONG_SIDE_PX))
        if factor > 1:
            small = cv2.resize(frame, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        else:
            small = frame
        result = self._detector.process(small)
        out = _Detection()
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
        self._num_faces = len(out.boxes)
        return out

    def _follow_or_select(self, detection: _Detection) -> _Track | None:
        """Update the track from a detector run: follow the same person by overlap, or select one.

        The selector chooses only when no track exists or the tracked person has been missing
        for more than ``max_lost_frames``; otherwise a face elsewhere is never adopted.
        """
        track = self._track
        if track is not None:
            track.frames_since_detect = 0
            track.detected_box = None
            ious = [_iou(track.box, b) for b in detection.boxes]
            best = int(np.argmax(ious)) if ious else -1
            if best >= 0 and ious[best] >= _MIN_FOLLOW_IOU:
                track.score = detection.scores[best]
                track.detected_box = detection.boxes[best]
                return track
            track.score = 0.0  # the detector does not see the person we follow
            if track.lost_frames <= self.max_lost_frames:
                return track
        chosen = self.selector.choose(detection.boxes)
        if chosen is None:
            self._track = None
            return None
        if track is not None:
            self._mesh.reset()  # another person: the mesh's own tracking state is stale
        self._track = _Track(
            box=detection.boxes[chosen],
            landmarks=None,
            score=detection.scores[chosen],
            detected_box=detection.boxes[chosen],
        )
        return self._track

    def _mesh_on(self, frame: np.ndarray, box: Box, margin: float) -> np.ndarray | None:
        """Run the mesh on a square crop around ``box``; landmarks in frame pixels, or None."""
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
        result = self._mesh.process(canvas)
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

    def _update(self, frame_index: int, landmarks: np.ndarray | None) -> FaceObservation:
        track = self._track
        if track is None:
            return FaceObservation(frame_index=frame_index, status=FaceStatus.NO_FACE, num_faces=self._num_faces)
        target = track.detected_box
        track.frames_since_detect += 1
        track.detected_box = None
        if landmarks is None:
            track.lost_frames += 1
            track.landmarks = None
            track.last_frame_index = frame_index
            if target is not None:
                track.box = target
                # The detector sees the face but the mesh cannot place landmarks on it.
                return FaceObservation(
                    frame_index=frame_index,
                    status=FaceStatus.LOW_CONFIDENCE,
                    box=target,
                    score=float(track.score),
                    num_faces=self._num_faces,
                )
            return FaceObservation(frame_index=frame_index, status=FaceStatus.NO_FACE, num_faces=self._num_faces)

        box = _landmark_box(landmarks)
        plausible = self._plausible(track, landmarks, box, frame_index)
        track.box = box
        track.landmarks = landmarks
        track.last_frame_index = frame_index
        track.lost_frames = 0
        status = FaceStatus.OK if plausible and track.score >= self.min_confidence else FaceStatus.LOW_CONFIDENCE
        return FaceObservation(
            frame_index=frame_index,
            status=status,
            landmarks=landmarks,
            box=box,
            score=float(track.score),
            num_faces=self._num_faces,
        )

    @staticmethod
    def _plausible(track: _Track, landmarks: np.ndarray, box: Box, frame_index: int) -> bool:
        """False for landmarks no real face produces: degenerate, or a jump/size change in one frame."""
        size = math.hypot(box[2] - box[0], box[3] - box[1])
        if not np.isfinite(landmarks).all() or size < 8.0:
            return False
        prev = track.landmarks
        if prev is None or track.last_frame_index != frame_index - 1:
            return True
        pbox = _landmark_box(prev)
        psize = math.hypot(pbox[2] - pbox[0], pbox[3] - pbox[1])
        ratio = size / max(psize, 1e-6)
        if not 0.75 <= ratio <= 1.33:
            return False
        shift = math.hypot((box[0] + box[2] - pbox[0] - pbox[2]) / 2, (box[1] + box[3] - pbox[1] - pbox[3]) / 2)
        return shift <= 0.35 * max(size, psize)
