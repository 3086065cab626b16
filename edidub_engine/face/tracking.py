"""Face tracking: one person's 478 MediaPipe landmarks per frame, in native frame pixels.

Method (why each step; the two MediaPipe graphs are :mod:`edidub_engine.face.graphs`, shared with
:mod:`edidub_engine.face.faces`, which follows several faces at once):

* The **full-range detector** finds faces only when there is no track, when the mesh loses the
  face, and every ``detect_every`` frames to refresh the confidence score and the face count.
* The **face mesh** runs on a small square crop around the face, taken from the previous frame's
  landmarks or from the detection.
* The **selector** picks a face only when a track starts (first frame, after :meth:`FaceTracker.reset`,
  or after the tracked face was lost for ``max_lost_frames``); meanwhile the tracker follows
  the same person by box overlap, not whichever face is largest now.

A frame without a face, or with a doubtful one, is *marked* (:class:`FaceStatus`), never an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face.graphs import (
    CROP_FROM_DETECTION,
    CROP_FROM_LANDMARKS,
    DETECT_LONG_SIDE_PX,
    MESH_CROP_PX,
    NUM_LANDMARKS,
    Box,
    CropMesh,
    Detections,
    FaceDetector,
    box_area,
    FrameTracker,
    check_settings,
    iou,
    landmark_box,
    plausible_step,
)
from edidub_engine.shot import face_selector_parts

__all__ = [
    "FaceStatus",
    "FaceObservation",
    "SelectorMode",
    "FaceSelector",
    "FaceTracker",
    "NUM_LANDMARKS",
    "DETECT_LONG_SIDE_PX",
    "MESH_CROP_PX",
]

_MIN_FOLLOW_IOU = 0.2
"""A detector box belongs to the followed person when it overlaps the last box this much."""


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
            return max(range(len(boxes)), key=lambda i: box_area(boxes[i]))
        if self.mode is SelectorMode.INDEX:
            order = sorted(range(len(boxes)), key=lambda i: (boxes[i][0] + boxes[i][2]) / 2)
            assert self.index is not None
            return order[self.index] if self.index < len(order) else None
        assert self.point_px is not None
        px, py = self.point_px
        inside = [i for i, b in enumerate(boxes) if b[0] <= px <= b[2] and b[1] <= py <= b[3]]
        if inside:
            return min(inside, key=lambda i: box_area(boxes[i]))  # the innermost, if boxes nest
        return min(
            range(len(boxes)),
            key=lambda i: ((boxes[i][0] + boxes[i][2]) / 2 - px) ** 2 + ((boxes[i][1] + boxes[i][3]) / 2 - py) ** 2,
        )


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


class FaceTracker(FrameTracker):
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
        check_settings(min_confidence, detect_every, max_lost_frames)
        self.selector = FaceSelector.parse(selector)
        self.min_confidence = float(min_confidence)
        self.detect_every = int(detect_every)
        self.max_lost_frames = int(max_lost_frames)
        # Faces below min_confidence but above this floor are reported LOW_CONFIDENCE, not missed.
        self._detector_floor = min(float(detector_floor), self.min_confidence)

        self._detector = FaceDetector(self._detector_floor)
        self._mesh = CropMesh()
        self._track: _Track | None = None
        self._num_faces = 0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------
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
    def process(self, frame: np.ndarray, frame_index: int) -> FaceObservation:
        """Track one H×W×3 uint8 RGB frame at native size."""
        frame_index = self._frame_index(frame, frame_index)
        track = self._track
        if track is not None and frame_index != track.last_frame_index + 1:
            # A gap in the frame numbers: the previous landmarks say little about this frame.
            track.landmarks = None

        detection: Detections | None = None
        if track is None or track.landmarks is None or track.frames_since_detect >= self.detect_every:
            detection = self._detect(frame)
            track = self._follow_or_select(detection)

        landmarks: np.ndarray | None = None
        if track is not None and track.landmarks is not None:
            landmarks = self._mesh.on(frame, landmark_box(track.landmarks), CROP_FROM_LANDMARKS)
            if landmarks is None and detection is None:
                # The mesh lost the face between detector runs: fall back to the detector now.
                detection = self._detect(frame)
                track = self._follow_or_select(detection)
        target = track.detected_box if track is not None else None
        if landmarks is None and target is not None:
            landmarks = self._mesh.on(frame, target, CROP_FROM_DETECTION)
        return self._update(frame_index, landmarks)

    def mesh_near(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
        """The face mesh where ``landmarks`` (of this or a nearby frame) put the face, without the detector or the
        track: how QC reads a written frame's mouth where the source's face is. None when no face is there."""
        if self._closed:
            raise InvalidArgumentError("FaceTracker is closed")
        return self._mesh.on(frame, landmark_box(np.asarray(landmarks, np.float32)), CROP_FROM_LANDMARKS)

    # -- internals -------------------------------------------------------------------------
    def _detect(self, frame: np.ndarray) -> Detections:
        detection = self._detector.detect(frame)
        self._num_faces = len(detection.boxes)
        return detection

    def _follow_or_select(self, detection: Detections) -> _Track | None:
        """Update the track from a detector run: follow the same person by overlap, or select one.

        The selector chooses only when no track exists or the tracked person has been missing
        for more than ``max_lost_frames``; otherwise a face elsewhere is never adopted.
        """
        track = self._track
        if track is not None:
            track.frames_since_detect = 0
            track.detected_box = None
            ious = [iou(track.box, b) for b in detection.boxes]
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

        box = landmark_box(landmarks)
        plausible = plausible_step(track.landmarks, landmarks, track.last_frame_index == frame_index - 1)
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
