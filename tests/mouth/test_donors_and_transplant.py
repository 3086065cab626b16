"""The actor's own mouths: a smooth path of donors through the shot (mouth.donors) and a donor's mouth moved onto
another frame (mouth.composite), checked on a real shot with the face mesh."""

from __future__ import annotations

import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.mouth import Donor, DonorBank, mouth_opening, pose_signature


def _donor(index: int, opening: float, pose: float = 0.0, segment: int = 0) -> Donor:
    return Donor(index=index, opening=opening, pose=np.full(4, pose), landmarks=np.zeros((478, 2), np.float32),
                 crop=np.zeros((4, 4, 3), np.uint8), crop_landmarks=np.zeros((478, 2), np.float32), segment=segment)


def test_the_path_takes_matching_openings_and_runs_on_where_it_can():
    bank = DonorBank(capacity=100)
    openings = 0.1 * (1 + np.sin(np.arange(60) / 3.0))  # the actor's mouth over 60 frames
    for i, o in enumerate(openings):
        bank.add(_donor(i, float(o)))
    targets = openings[20:40]  # asking for what frames 20..39 did: a path that runs along them is free
    plan = bank.plan(list(range(100, 120)), targets, np.zeros((20, 4)))
    assert [d.index for d in plan.donors] == list(range(20, 40)) and plan.jumps == 0
    shuffled = np.array([0.0, 0.2] * 10)  # closed, wide, closed...: every frame must find its opening
    plan = bank.plan(list(range(100, 120)), shuffled, np.zeros((20, 4)))
    assert np.abs(np.array([d.opening for d in plan.donors]) - shuffled).max() < 0.01


def test_pose_exclusion_and_camera_shots_limit_the_donors():
    bank = DonorBank(capacity=10)
    for i in range(10):
        bank.add(_donor(i, 0.1, pose=float(i), segment=0 if i < 5 else 1))
    plan = bank.plan([3], np.array([0.1]), np.full((1, 4), 3.0))
    assert plan.donors[0].index == 3  # the same pose
    plan = bank.plan([3], np.array([0.1]), np.full((1, 4), 3.0), exclusion_frames=2)
    assert abs(plan.donors[0].index - 3) >= 2
    plan = bank.plan([8], np.array([0.1]), np.full((1, 4), 3.0), segment=1)
    assert plan.donors[0].segment == 1
    with pytest.raises(InvalidArgumentError, match="order"):
        bank.add(_donor(2, 0.1))
    bank.add(_donor(10, 0.1))
    assert len(bank) == 10 and bank.get(0) is None and bank.get(10) is not None  # the oldest frame left


def test_a_donors_mouth_moves_onto_another_frame(footage_path):
    """A closed-mouth frame given an open-mouth frame's mouth: the face mesh reads the donor's opening on it, and the
    picture away from the mouth is the target's own."""
    from edidub_engine.face import FaceTracker
    from edidub_engine.media import iter_frames, probe_video
    from edidub_engine.mouth.composite import apply_transplant, mouth_patch, transplant

    info = probe_video(footage_path("retalking_face2.mp4"))
    frames, marks = [], []
    with FaceTracker() as tracker:
        for i, frame in iter_frames(info, 0, 60):
            frames.append(frame)
            marks.append(tracker.process(frame, i).landmarks)
    opening = mouth_opening(np.stack(marks))
    closed, wide = int(np.nanargmin(opening)), int(np.nanargmax(opening))
    assert opening[wide] > 3 * opening[closed]
    patch, patch_landmarks = mouth_patch(frames[wide], marks[wide])
    moved = transplant(frames[closed], marks[closed], patch, patch_landmarks)
    out = apply_transplant(frames[closed], moved)
    with FaceTracker() as tracker:
        seen = tracker.process(out, 0).landmarks
    assert seen is not None
    assert abs(mouth_opening(seen)[0] - opening[wide]) < 0.35 * opening[wide]
    far = np.ones(out.shape[:2], bool)
    far[moved.y0 : moved.y0 + moved.alpha.shape[0], moved.x0 : moved.x0 + moved.alpha.shape[1]] = False
    assert np.array_equal(out[far], frames[closed][far])  # nothing moves outside the transplant's box
    assert (moved.alpha[0] < 0.01).all() and (moved.alpha[-1] < 0.01).all()  # and its edge is feathered to nothing
    assert pose_signature(seen).shape == (1, 44)


def test_a_donor_whose_cheeks_look_unlike_the_frame_is_passed_over():
    """Beyond what a moving head's skin differs by anyway, unlike cheeks and chin (a hand in front, other light) cost:
    of two donors with the same opening and pose, the one that looks like the frame is taken."""
    bank = DonorBank(capacity=10)
    skin, other = np.full((8, 8, 3), 120, np.uint8), np.full((8, 8, 3), 200, np.uint8)
    for index, crop in ((0, other), (5, skin)):
        bank.add(Donor(index=index, opening=0.1, pose=np.zeros(4), landmarks=np.zeros((478, 2), np.float32), crop=crop,
                       crop_landmarks=np.zeros((478, 2), np.float32)))
    region = np.ones((1, 8, 8), bool)
    looked = bank.plan([20], np.array([0.1]), np.zeros((1, 4)), looks=(other[None], region))
    assert looked.donors[0].index == 0
    looked = bank.plan([20], np.array([0.1]), np.zeros((1, 4)), looks=(np.full((1, 8, 8, 3), 124, np.uint8), region))
    assert looked.donors[0].index == 5
