"""Tracking on real footage (real MediaPipe, no mocks) and synthetic multi-face frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face import FaceSelector, FaceStatus, FaceTracker, SelectorMode

GRID = "grid_bbaf2n.mpg"
GRID_OTHER = "grid_lbbc2a.mpg"
MEAD = "mead_M003_disgusted.mp4"
HAMILTON = "hamilton_mic_occlusion.mp4"


def _check_landmarks(obs, frame_shape):
    assert obs.landmarks is not None
    assert obs.landmarks.shape == (478, 3) and obs.landmarks.dtype == np.float32
    h, w = frame_shape[:2]
    xy = obs.landmarks[:, :2]
    assert (xy[:, 0] > -0.1 * w).all() and (xy[:, 0] < 1.1 * w).all()
    assert (xy[:, 1] > -0.1 * h).all() and (xy[:, 1] < 1.1 * h).all()


def test_grid_every_frame_has_a_face(footage, tracked):
    clip = footage(GRID)
    assert len(clip.frames) == 75
    obs = tracked(clip)
    assert [o.frame_index for o in obs] == list(range(75))
    assert all(o.status is FaceStatus.OK for o in obs), [o.status for o in obs if not o.ok]
    for o, (_, frame) in zip(obs, clip.frames):
        _check_landmarks(o, frame.shape)
        assert o.num_faces == 1 and o.score >= 0.5


def test_mead_1080p_every_frame_has_a_face(footage, tracked):
    clip = footage(MEAD, start=20, count=30)
    assert clip.frames[0][1].shape == (1080, 1920, 3)
    obs = tracked(clip)
    assert [o.frame_index for o in obs] == list(range(20, 50))
    assert all(o.status is FaceStatus.OK for o in obs)
    for o, (_, frame) in zip(obs, clip.frames):
        _check_landmarks(o, frame.shape)
        x0, y0, x1, y1 = o.box
        assert 300 < x1 - x0 < 900  # a large studio face, in native pixels


def _hamilton_segments(clip):
    times = np.array(clip.times_s)
    assert abs(times[0] - 0.85) < 0.05, "the video stream starts 0.85 s into the file"
    wide = [i for i, t in enumerate(times) if t < 1.45]  # wide shot, face ~40 px
    cut = int(np.argmax(times >= 7.88))  # first audience frame
    audience = [i for i, t in enumerate(times) if t >= 8.2]
    return wide, cut, audience


def test_hamilton_small_face_and_audience(footage, tracked):
    clip = footage(HAMILTON)
    wide, cut, audience = _hamilton_segments(clip)
    obs = tracked(clip)
    # The ~40 px face of the wide shot is found (detector first, mesh on an enlarged crop).
    assert all(obs[i].status is FaceStatus.OK for i in wide)
    assert all(obs[i].box[2] - obs[i].box[0] < 80 for i in wide)
    # Without a reset at the cut the performer's track does not silently continue:
    # the first audience frame is marked (a jump no real face makes).
    assert obs[cut - 1].status is FaceStatus.OK
    assert obs[cut].status is not FaceStatus.OK
    # The audience shot has several faces and no reliable speaker face throughout.
    assert any(obs[i].status is not FaceStatus.OK for i in audience)
    assert np.mean([obs[i].num_faces >= 2 for i in audience]) > 0.5


def test_hamilton_reset_at_cut(footage):
    clip = footage(HAMILTON)
    _, cut, audience = _hamilton_segments(clip)
    with FaceTracker() as tracker:
        before = [tracker.process(f, i) for i, f in clip.frames[cut - 5 : cut]]
        tracker.reset()
        after = [tracker.process(f, i) for i, f in clip.frames[cut : cut + 40]]
    assert all(o.ok for o in before)
    assert after[0].num_faces >= 2
    # After a reset the selector picks an audience face afresh: every frame has a box (the
    # largest face is a near-profile one the mesh mostly cannot fit, so it is marked
    # LOW_CONFIDENCE rather than NO_FACE), and the tracker stays on that person.
    assert all(o.box is not None and o.status is not FaceStatus.NO_FACE for o in after)
    centres = np.array([(o.box[0] + o.box[2]) / 2 for o in after])
    assert np.ptp(centres) < 60


def test_blank_frame_is_marked_not_an_error():
    blank = np.zeros((288, 360, 3), np.uint8)
    with FaceTracker() as tracker:
        obs = tracker.process(blank, 7)
        obs2 = tracker.process(np.full((1080, 1920, 3), 128, np.uint8), 8)
    for o, idx in ((obs, 7), (obs2, 8)):
        assert o.status is FaceStatus.NO_FACE and o.frame_index == idx
        assert o.landmarks is None and o.box is None and o.num_faces == 0


def test_bad_frame_is_an_invalid_argument():
    with FaceTracker() as tracker:
        with pytest.raises(InvalidArgumentError):
            tracker.process(np.zeros((10, 10), np.uint8), 0)
        with pytest.raises(InvalidArgumentError):
            tracker.process(np.zeros((10, 10, 3), np.float32), 0)
    with pytest.raises(InvalidArgumentError):
        FaceTracker(min_confidence=1.5)


def test_no_face_then_face_again(footage):
    clip = footage(GRID, count=12)
    blank = np.zeros_like(clip.frames[0][1])
    seq = clip.frames[:4] + [(4, blank), (5, blank)] + clip.frames[6:]
    with FaceTracker() as tracker:
        obs = list(tracker.track(seq))
    assert [o.status for o in obs[4:6]] == [FaceStatus.NO_FACE] * 2
    assert all(o.ok for o in obs[:4] + obs[7:])


@pytest.mark.parametrize(
    ("text", "mode", "index", "point"),
    [
        ("largest", SelectorMode.LARGEST, None, None),
        (" Largest ", SelectorMode.LARGEST, None, None),
        ("1", SelectorMode.INDEX, 1, None),
        ("0", SelectorMode.INDEX, 0, None),
        ("640,360", SelectorMode.POINT, None, (640.0, 360.0)),
        ("12.5, 7", SelectorMode.POINT, None, (12.5, 7.0)),
    ],
)
def test_selector_parse(text, mode, index, point):
    sel = FaceSelector.parse(text)
    assert sel.mode is mode and sel.index == index and sel.point_px == point


@pytest.mark.parametrize("text", ["", "biggest", "-1", "1,2,3", "x,y", "1.5"])
def test_selector_parse_rejects(text):
    with pytest.raises(InvalidArgumentError):
        FaceSelector.parse(text)


@pytest.fixture(scope="module")
def two_faces(footage):
    """Frames with two real faces side by side: GRID male left, GRID female right."""
    left = footage(GRID, count=10)
    right = footage(GRID_OTHER, count=10)
    return [(i, np.hstack([a, b])) for (i, a), (_, b) in zip(left.frames, right.frames)]


@pytest.mark.parametrize(
    ("selector", "side"),
    [("0", "left"), ("1", "right"), ("180,100", "left"), ("540,130", "right"), ("700,10", "right")],
)
def test_selector_picks_face(two_faces, selector, side):
    with FaceTracker(selector=selector) as tracker:
        obs = list(tracker.track(two_faces[:4]))
    assert all(o.ok for o in obs)
    assert all(o.num_faces == 2 for o in obs)
    centres = [(o.box[0] + o.box[2]) / 2 for o in obs]
    assert all((c < 360) == (side == "left") for c in centres), centres


def test_index_beyond_faces_is_no_face(two_faces):
    with FaceTracker(selector=FaceSelector.nth(2)) as tracker:
        obs = tracker.process(two_faces[0][1], 0)
    assert obs.status is FaceStatus.NO_FACE and obs.num_faces == 2


def test_reset_selects_again(two_faces):
    with FaceTracker(selector="1") as tracker:
        first = tracker.process(two_faces[0][1], 0)
        swapped = np.ascontiguousarray(np.hstack([two_faces[1][1][:, 360:], two_faces[1][1][:, :360]]))
        tracker.reset()
        again = tracker.process(swapped, 1)
    assert (first.box[0] + first.box[2]) / 2 > 360
    assert (again.box[0] + again.box[2]) / 2 > 360  # index 1 = the right face of the new frame


def _place(canvas, face, scale, centre_x):
    h, w = face.shape[:2]
    small = cv2.resize(face, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    x0, y0 = round(centre_x - sw / 2), (canvas.shape[0] - sh) // 2
    canvas[y0 : y0 + sh, x0 : x0 + sw] = small


def test_follows_the_same_person_not_the_largest(footage):
    a = footage(GRID, count=10).frames
    b = footage(GRID_OTHER, count=10).frames
    n = 20
    frames = []
    for k in range(n):
        t = k / (n - 1)
        canvas = np.zeros((400, 960, 3), np.uint8)
        _place(canvas, a[k % 10][1], 1.2 - 0.35 * t, 240)  # left face shrinks: 1.2 → 0.85
        _place(canvas, b[k % 10][1], 0.8 + 0.45 * t, 720)  # right face grows: 0.8 → 1.25
        frames.append((k, canvas))
    with FaceTracker(selector="largest", detect_every=2) as tracker:
        obs = list(tracker.track(frames))
    assert all(o.status is FaceStatus.OK for o in obs)
    assert all((o.box[0] + o.box[2]) / 2 < 480 for o in obs)  # still the left person
    with FaceTracker(selector="largest") as tracker:
        last = tracker.process(frames[-1][1], 0)
    assert (last.box[0] + last.box[2]) / 2 > 480  # on its own, the right face is the largest
