"""Several faces through one shot, each under a stable identity, on one decode.

Why not one :class:`~edidub_engine.face.tracking.FaceTracker` per face: each would run the detector
for itself, and each follows its person alone by box overlap, so two people who cross can trade
places unnoticed. Here one detector run serves every face, each wanted face costs one face mesh per
frame (its own :class:`~edidub_engine.face.graphs.CropMesh`, whose tracking state is that person's),
and the detections of a frame are given to the people *jointly*: a Hungarian assignment
(:func:`scipy.optimize.linear_sum_assignment`) on a cost of where each person should be (its box
carried on by its velocity) and what it looks like (a colour histogram of the face, learnt while the
person stands clear of the others), with "not seen" and "a new face" as options of their own.

Identity rules:

* Faces are numbered left to right at the shot's first frame with faces, as ``--face N`` counts;
  faces that come in later take the next numbers. ``largest`` and ``X,Y`` choose among the faces of
  that first frame. A selector stays with its person until :meth:`MultiFaceTracker.reset` (a cut).
* An assignment is *sure* when the next-best way of giving out that frame's detections costs clearly
  more (:data:`MARGIN`). Otherwise the identity is *unsure* on that frame: no landmarks, status
  ``LOW_CONFIDENCE``, listed in :attr:`FacesFrame.unsure` and in :meth:`MultiFaceTracker.lost_ranges`.
* A person once unsure or unseen is confirmed again by its looks alone: where it stands after an
  occlusion says nothing about who it is. Two look-alikes who cross behind each other therefore stay
  unsure rather than being swapped silently.
* The detector runs every ``detect_every`` frames, and on every frame where two faces are near each
  other, where an identity is unsure or a face was lost within ``max_lost_frames``, or where a mesh lost
  its face; a face gone longer (it left the frame) is looked for at the detector's own pace.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face.graphs import (
    CROP_FROM_DETECTION,
    CROP_FROM_LANDMARKS,
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
from edidub_engine.face.tracking import FaceObservation, FaceSelector, FaceStatus, SelectorMode

__all__ = ["ALL_FACES", "FacesFrame", "MultiFaceTracker"]

ALL_FACES = "all"
"""Follow every face seen, keyed ``FaceSelector.nth(number)``."""

MARGIN = 0.3
"""An assignment is sure when the best other way of giving out the detections costs this much more."""

APPEARANCE_WEIGHT = 2.0
"""Cost per unit of Bhattacharyya distance between a person's looks and a detection's (0 same, 1 disjoint).
Measured on the shared footage: the same face across a shot 0.08-0.35, two people 0.27-0.78."""

REID_MAX_APPEARANCE = 0.45
"""A person gone longer than ``max_lost_frames`` is recognised anywhere in the frame, but only this close in looks."""

MISS_COST = 1.0
"""Cost of a person the detector did not see on a frame it ran."""

NEW_COST = 1.0
"""Cost of a detection that belongs to nobody known."""

NEAR_SIZES = 2.0
"""Two faces whose centres are closer than this many face sizes may trade places: detect every frame."""

_GATE_SIZES = 1.0
"""How far (in face sizes) a detection may lie from where a person should be, plus ``_GATE_GROWTH`` per frame unseen."""

_GATE_GROWTH = 0.25
_MAX_SIZE_RATIO = 2.0
_AGREE = 0.5
"""A mesh belongs to a detection when their centres lie within this many detection sizes."""

_SAME_FACE_IOU = 0.4
"""Two meshes overlapping this much landed on one face."""

_LEARN = 0.1
_HIST_BINS = (8, 4, 4)
_INFEASIBLE = 1e6


@dataclass(frozen=True)
class FacesFrame:
    """One frame's result: an observation per wanted identity.

    ``faces``: selector → :class:`FaceObservation` (``NO_FACE`` where the identity is not seen, or its
    selector has no face yet). ``unsure``: the identities seen on this frame whose assignment the
    tracker cannot vouch for (their observations are ``LOW_CONFIDENCE`` without landmarks).
    ``num_faces``: faces the detector saw at its most recent run.
    """

    frame_index: int
    faces: dict[FaceSelector, FaceObservation]
    unsure: frozenset[FaceSelector] = frozenset()
    num_faces: int = 0

    def __getitem__(self, face: FaceSelector | str | int) -> FaceObservation:
        return self.faces[FaceSelector.parse(face)]


@dataclass
class _Person:
    """One person of the shot, wanted or not (unwanted people take part in the assignment only)."""

    number: int
    det_box: Box  # the detector's box at det_frame
    det_frame: int
    looks: np.ndarray  # HSV histogram of the face
    score: float
    seen_frame: int  # last frame it was seen (detected or meshed)
    sure_frame: int  # last frame it was seen and sure of
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # det-box centre, px per frame
    centre_frame: int = -(10**9)  # frame of `centre`, its last det-box-equivalent centre
    centre: np.ndarray = field(default_factory=lambda: np.zeros(2))
    landmarks: np.ndarray | None = None  # at lm_frame
    lm_frame: int = -(10**9)
    lm_box_at_det: Box | None = None  # the landmark box on det_frame: relates the two kinds of box
    mesh: CropMesh | None = None
    needs_reid: bool = False  # unsure or unseen since: only its looks may confirm it again
    # this frame:
    detected: Box | None = None
    sure: bool = True
    plausible: bool = True

    def expected_box(self, frame_index: int) -> Box:
        """Where the detector should find this person on ``frame_index``."""
        box = self.det_box
        since = self.det_frame
        if self.landmarks is not None and self.lm_frame > self.det_frame and self.lm_box_at_det is not None:
            box = _moved(self.det_box, self.lm_box_at_det, landmark_box(self.landmarks))
            since = self.lm_frame
        dt = min(frame_index - since, 12)
        dx, dy = self.velocity * dt
        return (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)


def _centre(b: Box) -> np.ndarray:
    return np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])


def _size(b: Box) -> float:
    return max(math.sqrt(box_area(b)), 1.0)


def _moved(box: Box, before: Box, after: Box) -> Box:
    """``box`` carried along as ``before`` became ``after`` (shift and scale of their centres and sizes)."""
    scale = _size(after) / _size(before)
    c = _centre(box) - _centre(before)
    cx, cy = _centre(after) + c * scale
    hw, hh = (box[2] - box[0]) * scale / 2, (box[3] - box[1]) * scale / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def _distance(a: Box, b: Box) -> float:
    """Centre distance in face sizes (the larger of the two)."""
    return float(np.linalg.norm(_centre(a) - _centre(b))) / max(_size(a), _size(b))


def _looks(frame: np.ndarray, box: Box) -> np.ndarray:
    """HSV histogram of the middle of a detector box: skin, hair and eyes, little background."""
    h, w = frame.shape[:2]
    cx, half = (box[0] + box[2]) / 2, (box[2] - box[0]) * 0.4
    x0, x1 = max(0, int(cx - half)), min(w, int(math.ceil(cx + half)))
    y0, y1 = max(0, int(box[1])), min(h, int(math.ceil(box[3])))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full(int(np.prod(_HIST_BINS)), 1.0, np.float32)
    roi = cv2.resize(frame[y0:y1, x0:x1], (32, 32), interpolation=cv2.INTER_AREA)
    hist = cv2.calcHist([cv2.cvtColor(roi, cv2.COLOR_RGB2HSV)], [0, 1, 2], None, list(_HIST_BINS), [0, 180, 0, 256, 0, 256])
    return hist.flatten() / max(float(hist.sum()), 1.0)


def _unlike(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


class MultiFaceTracker(FrameTracker):
    """Follows the faces ``faces`` names through a shot on one pass; owns MediaPipe graphs (a context manager).

    ``faces``: face selectors as ``--face`` takes them (``"0"``, ``"largest"``, ``"640,360"``), ``"all"``
    (every face seen, keyed ``FaceSelector.nth(n)``), or a list mixing them. ``min_confidence``,
    ``detect_every``, ``max_lost_frames`` and ``detector_floor`` mean what they mean for
    :class:`~edidub_engine.face.tracking.FaceTracker`; a person unseen longer than ``max_lost_frames``
    is looked for by its looks alone. Models load on construction, never at import.
    """

    def __init__(
        self,
        faces: str | FaceSelector | Sequence[str | FaceSelector] = ALL_FACES,
        *,
        min_confidence: float = 0.5,
        detect_every: int = 8,
        max_lost_frames: int = 12,
        detector_floor: float = 0.2,
    ):
        check_settings(min_confidence, detect_every, max_lost_frames)
        wanted = [faces] if isinstance(faces, (str, FaceSelector)) else list(faces)
        if not wanted:
            raise InvalidArgumentError("no face to track", hint='name faces as --face does ("0", "largest", "640,360") or "all"')
        self.all_faces = any(isinstance(f, str) and f.strip().lower() == ALL_FACES for f in wanted)
        self.selectors: list[FaceSelector] = list(dict.fromkeys(
            FaceSelector.parse(f) for f in wanted if not (isinstance(f, str) and f.strip().lower() == ALL_FACES)))
        self.min_confidence = float(min_confidence)
        self.detect_every = int(detect_every)
        self.max_lost_frames = int(max_lost_frames)
        self._detector = FaceDetector(min(float(detector_floor), self.min_confidence))
        self._closed = False
        self.detector_runs = 0  # what the tracking cost: detector runs and face meshes since construction
        self.mesh_runs = 0
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        if not self._closed:
            self._drop_people()
            self._detector.close()
            self._closed = True

    def reset(self) -> None:
        """Forget every person (call at a cut): numbering and selectors start afresh, as do :meth:`lost_ranges`."""
        if getattr(self, "_people", None):
            self._drop_people()
        self._people: list[_Person] = []
        self._bound: dict[FaceSelector, _Person] = {}
        self._lost: dict[FaceSelector, list[list[int]]] = {}
        self._num_faces = 0
        self._since_detect = 0
        self._last_frame: int | None = None
        self._first_frame = 0

    def _drop_people(self) -> None:
        for person in self._people:
            if person.mesh is not None:
                person.mesh.close()
        self._people = []

    # -- what the caller sees ------------------------------------------------------------------
    @property
    def identities(self) -> list[FaceSelector]:
        """The keys of each :class:`FacesFrame` now: the selectors given, then (with ``all``) each face's number."""
        keys = list(self.selectors)
        if self.all_faces:
            keys += [FaceSelector.nth(p.number) for p in sorted(self._people, key=lambda p: p.number)]
        return list(dict.fromkeys(keys))

    def face_index(self, face: FaceSelector | str) -> int | None:
        """The number (left to right at its first frame) of the face a selector follows; None before it has one."""
        person = self._person_for(FaceSelector.parse(face))
        return None if person is None else person.number

    def lost_ranges(self) -> dict[FaceSelector, list[list[int]]]:
        """Per identity, the half-open frame ranges since the last reset where its identity was lost: from the
        frame after it was last sure of (out of sight meanwhile) to the last frame where it was seen but unsure."""
        return {key: [list(r) for r in ranges] for key, ranges in self._lost.items()}

    def process(self, frame: np.ndarray, frame_index: int) -> FacesFrame:
        """Track one H×W×3 uint8 RGB frame at native size."""
        t = self._frame_index(frame, frame_index)
        if self._last_frame is None:
            self._first_frame = t
        elif t != self._last_frame + 1:
            for person in self._people:  # a gap in the frame numbers: the last landmarks say little here
                person.landmarks = None
        self._last_frame = t
        for person in self._people:
            person.detected, person.sure, person.plausible = None, not person.needs_reid, True
        detected = self._should_detect(t)
        if detected:
            self._detect(frame, t)
        failed = self._mesh(frame, t, detected, self._wanted())
        if failed and not detected:  # a mesh lost its face between detector runs: ask the detector now
            detected = True
            self._detect(frame, t)
            self._mesh(frame, t, True, failed, retry=True)
        self._settle(t, detected)
        self._since_detect = 0 if detected else self._since_detect + 1
        return self._result(t)

    # -- the detector and the assignment -------------------------------------------------------
    def _active(self, person: _Person, t: int) -> bool:
        return t - person.seen_frame <= self.max_lost_frames

    def _should_detect(self, t: int) -> bool:
        if not self._people or self._since_detect + 1 >= self.detect_every:
            return True
        active = [p for p in self._people if self._active(p, t)]
        if any(p.needs_reid or (p.mesh is not None and p.landmarks is None) for p in active):
            return True
        boxes = [p.expected_box(t) for p in active]
        return any(_distance(a, b) < NEAR_SIZES for i, a in enumerate(boxes) for b in boxes[i + 1:])

    def _cost(self, person: _Person, t: int, box: Box, looks: np.ndarray) -> float:
        unlike = _unlike(person.looks, looks)
        unseen = t - person.seen_frame
        if unseen > self.max_lost_frames:  # gone a while: anywhere in the frame, but it must look the same
            return APPEARANCE_WEIGHT * unlike if unlike <= REID_MAX_APPEARANCE else _INFEASIBLE
        expected = person.expected_box(t)  # where it was last sure of, carried on
        distance = _distance(expected, box)
        ratio = abs(math.log(_size(box) / _size(expected)))
        uncertain = t - (person.sure_frame if person.needs_reid else person.seen_frame)
        if distance > _GATE_SIZES + _GATE_GROWTH * uncertain or ratio > math.log(_MAX_SIZE_RATIO):
            return _INFEASIBLE
        where = 0.0 if person.needs_reid else distance + 0.5 * ratio
        return where + APPEARANCE_WEIGHT * unlike

    def _detect(self, frame: np.ndarray, t: int) -> None:
        found: Detections = self._detector.detect(frame)
        self.detector_runs += 1
        self._num_faces = len(found.boxes)
        looks = [_looks(frame, b) for b in found.boxes]
        people, n_det = self._people, len(found.boxes)
        cost = np.array([[self._cost(p, t, b, lk) for b, lk in zip(found.boxes, looks)] for p in people]).reshape(len(people), n_det)
        pairs, margins = _assign(cost)
        taken = set()
        for i, person in enumerate(people):
            j = pairs.get(i)
            if j is None:
                person.score = 0.0  # the detector does not see this person now
                continue
            taken.add(j)
            person.detected, person.score, person.seen_frame = found.boxes[j], found.scores[j], t
            person.sure = margins[i] >= MARGIN
            person.needs_reid = not person.sure
            if person.sure and all(_distance(found.boxes[j], b) > NEAR_SIZES / 2 for k, b in enumerate(found.boxes) if k != j):
                person.looks = (1 - _LEARN) * person.looks + _LEARN * looks[j]  # learn its looks only while it stands clear
        self._add_people(t, found, looks, taken)

    def _add_people(self, t: int, found: Detections, looks: list[np.ndarray], taken: set[int]) -> None:
        """Unclaimed confident detections away from everyone known are new people, numbered left to right."""
        active = [p for p in self._people if self._active(p, t)]
        new = [j for j in range(len(found.boxes)) if j not in taken and found.scores[j] >= self.min_confidence
               and all(_distance(p.expected_box(t), found.boxes[j]) > _GATE_SIZES for p in active)]
        first = max((p.number for p in self._people), default=-1) + 1
        for k, j in enumerate(sorted(new, key=lambda j: _centre(found.boxes[j])[0])):
            box = found.boxes[j]
            self._people.append(_Person(number=first + k, det_box=box, det_frame=t, looks=looks[j], score=found.scores[j],
                                        seen_frame=t, sure_frame=t, detected=box))
        if new:
            self._bind([p for p in self._people if p.detected is not None])

    def _bind(self, seen: list[_Person]) -> None:
        for selector in self.selectors:
            if selector in self._bound:
                continue
            if selector.mode is SelectorMode.INDEX:
                person = next((p for p in self._people if p.number == selector.index), None)
            else:
                chosen = selector.choose([p.detected for p in seen])
                person = None if chosen is None else seen[chosen]
            if person is not None:
                self._bound[selector] = person

    def _person_for(self, key: FaceSelector) -> _Person | None:
        if key in self._bound:
            return self._bound[key]
        if self.all_faces and key.mode is SelectorMode.INDEX:
            return next((p for p in self._people if p.number == key.index), None)
        return None

    def _wanted(self) -> list[_Person]:
        people = list(self._people) if self.all_faces else list(self._bound.values())
        return list({id(p): p for p in people}.values())

    # -- the mesh ------------------------------------------------------------------------------
    def _mesh(self, frame: np.ndarray, t: int, detected: bool, wanted: list[_Person], *, retry: bool = False) -> list[_Person]:
        """Landmarks for each wanted person; returns those whose mesh lost its face with no detection to fall back on
        (their last landmarks kept, for the detector's assignment; ``retry``: the second pass, from the detection only)."""
        failed = []
        for person in wanted:
            if person.mesh is None:
                person.mesh = CropMesh()
            previous = person.landmarks if person.lm_frame == t - 1 else None
            landmarks = None
            if not person.sure:
                pass  # an unsure identity gets no landmarks
            elif previous is not None and not retry and (person.detected is not None or not detected or not self._covered(person, t)):
                landmarks = self._mesh_on(person, frame, landmark_box(previous), CROP_FROM_LANDMARKS)
                if landmarks is not None and person.detected is not None and not _agrees(landmarks, person.detected):
                    landmarks = None  # the mesh followed someone else: start again from the detection
            if landmarks is None and person.sure and person.detected is not None:
                landmarks = self._mesh_on(person, frame, person.detected, CROP_FROM_DETECTION)
                if landmarks is not None and not _agrees(landmarks, person.detected):
                    landmarks = None
            if landmarks is None:
                if not detected and previous is not None:
                    failed.append(person)
                else:
                    person.landmarks = None
                continue
            person.plausible = plausible_step(previous, landmarks, previous is not None)
            person.landmarks, person.lm_frame, person.seen_frame = landmarks, t, t
        return failed

    def _mesh_on(self, person: _Person, frame: np.ndarray, box: Box, margin: float) -> np.ndarray | None:
        """The person's mesh on a crop around ``box``, the faces the detector gave to others hidden."""
        self.mesh_runs += 1
        hide = [q.detected for q in self._people if q is not person and q.detected is not None]
        return person.mesh.on(frame, box, margin, hide)

    def _covered(self, person: _Person, t: int) -> bool:
        """Whether a face the detector gave to someone else stands where this (undetected) person should be."""
        expected = person.expected_box(t)
        return any(q is not person and q.detected is not None and _distance(q.detected, expected) < NEAR_SIZES / 2
                   for q in self._people)

    def _settle(self, t: int, detected: bool) -> None:
        """Two meshes on one face: keep the one its detection vouches for. Then move every person on."""
        meshed = [p for p in self._wanted() if p.landmarks is not None and p.lm_frame == t]
        for i, a in enumerate(meshed):
            for b in meshed[i + 1:]:
                if a.landmarks is None or b.landmarks is None:
                    continue
                if iou(landmark_box(a.landmarks), landmark_box(b.landmarks)) < _SAME_FACE_IOU:
                    continue
                for p in (a, b):
                    if p.detected is None:
                        p.landmarks, p.sure, p.needs_reid = None, False, True
        for person in self._people:
            if not person.sure:
                continue  # an unsure sighting may be someone else's: it moves nobody
            if person.detected is not None:
                person.det_box, person.det_frame = person.detected, t
                meshed = person.landmarks is not None and person.lm_frame == t
                person.lm_box_at_det = landmark_box(person.landmarks) if meshed else None
            if person.seen_frame != t:
                if detected and not person.needs_reid:  # out of sight: who comes back must be recognised
                    person.needs_reid = True
                    if person.mesh is not None:
                        person.mesh.reset()
                continue
            person.sure_frame = t
            centre = _centre(person.expected_box(t) if person.detected is None else person.detected)
            step = t - person.centre_frame
            person.velocity = 0.5 * person.velocity + 0.5 * (centre - person.centre) / step if step <= self.detect_every else np.zeros(2)
            person.centre, person.centre_frame = centre, t

    def _result(self, t: int) -> FacesFrame:
        faces: dict[FaceSelector, FaceObservation] = {}
        unsure = set()
        for key in self.identities:
            person = self._person_for(key)
            faces[key] = self._observe(person, t)
            if person is not None and person.seen_frame == t and not person.sure:
                unsure.add(key)  # lost since it was last sure of, the frames it was out of sight included
                ranges = self._lost.setdefault(key, [])
                start = max(person.sure_frame + 1, self._first_frame)
                if ranges and ranges[-1][1] >= start:
                    ranges[-1][1] = t + 1
                else:
                    ranges.append([start, t + 1])
        return FacesFrame(t, faces, frozenset(unsure), self._num_faces)

    def _observe(self, person: _Person | None, t: int) -> FaceObservation:
        if person is None or person.seen_frame != t:
            return FaceObservation(frame_index=t, status=FaceStatus.NO_FACE, num_faces=self._num_faces)
        if person.landmarks is None or person.lm_frame != t:
            # seen by the detector but unsure, or the mesh cannot place landmarks on it
            return FaceObservation(frame_index=t, status=FaceStatus.LOW_CONFIDENCE, box=person.detected,
                                   score=float(person.score), num_faces=self._num_faces)
        ok = person.sure and person.plausible and person.score >= self.min_confidence
        return FaceObservation(frame_index=t, status=FaceStatus.OK if ok else FaceStatus.LOW_CONFIDENCE,
                               landmarks=person.landmarks, box=landmark_box(person.landmarks), score=float(person.score),
                               num_faces=self._num_faces)


def _agrees(landmarks: np.ndarray, detected: Box) -> bool:
    """The mesh sits on the detected face: the detection's centre lies near the landmarks' middle."""
    box = landmark_box(landmarks)
    return _distance(box, detected) <= _AGREE and abs(math.log(_size(box) / _size(detected))) <= math.log(_MAX_SIZE_RATIO)


def _assign(cost: np.ndarray) -> tuple[dict[int, int], dict[int, float]]:
    """Best person → detection pairs for ``cost`` [people, detections], and for each pair its margin: how much
    more the best assignment without that pair costs (a person may go unseen, a detection to nobody)."""
    from scipy.optimize import linear_sum_assignment  # here: scipy.optimize takes half a second to import

    n_people, n_det = cost.shape
    size = n_people + n_det
    full = np.full((size, size), _INFEASIBLE)
    full[:n_people, :n_det] = cost
    full[:n_people, n_det:][np.diag_indices(n_people)] = MISS_COST
    full[n_people:, :n_det][np.diag_indices(n_det)] = NEW_COST
    full[n_people:, n_det:] = 0.0

    def solve(matrix: np.ndarray) -> tuple[float, np.ndarray]:
        rows, cols = linear_sum_assignment(matrix)
        return float(matrix[rows, cols].sum()), cols

    best, cols = solve(full)
    pairs = {i: int(cols[i]) for i in range(n_people) if cols[i] < n_det and cost[i, cols[i]] < _INFEASIBLE}
    margins = {}
    for i, j in pairs.items():
        without = full.copy()
        without[i, j] = _INFEASIBLE
        margins[i] = solve(without)[0] - best
    return pairs, margins
