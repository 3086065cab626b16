"""Reference-frame selection (paper §3.1): nearest non-lip landmarks, outside ±k, same shot."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.training.reference import (
    JAW_LANDMARKS,
    LIP_LANDMARKS,
    NO_REFERENCE,
    REFERENCE_LANDMARKS,
    select_references,
    shot_ids_from_cuts,
)


def brute_force(landmarks, valid, shots, k):
    """The definition, written the slow and obvious way."""
    pts = np.asarray(landmarks, np.float64)[:, list(REFERENCE_LANDMARKS), :2]
    n = len(valid)
    best = np.full(n, NO_REFERENCE)
    best_d = np.full(n, np.inf)
    for i in range(n):
        if not valid[i]:
            continue
        for j in range(n):
            if valid[j] and shots[j] == shots[i] and abs(i - j) > k:
                d = float(((pts[i] - pts[j]) ** 2).sum(axis=1).mean())
                if d < best_d[i]:
                    best[i], best_d[i] = j, d
    return best, best_d


def distance(landmarks, i, j):
    pts = np.asarray(landmarks, np.float64)[:, list(REFERENCE_LANDMARKS), :2]
    return float(((pts[i] - pts[j]) ** 2).sum(axis=1).mean())


def check_against_brute_force(landmarks, valid, shots, k):
    got = select_references(landmarks, valid, exclusion_frames=k, shot_ids=shots)
    want, want_d = brute_force(landmarks, valid, shots, k)
    assert np.array_equal(got == NO_REFERENCE, want == NO_REFERENCE)
    for i in np.flatnonzero(got != NO_REFERENCE):
        j = got[i]
        assert abs(i - j) > k, f"frame {i} got {j}, inside the ±{k} exclusion window"
        assert valid[j] and shots[j] == shots[i]
        # Least distance (ties may resolve to another frame of equal distance).
        assert distance(landmarks, i, j) <= want_d[i] + 1e-9
    return got


def test_landmark_set_leaves_out_lips_and_jaw():
    chosen = set(REFERENCE_LANDMARKS)
    assert not chosen & set(LIP_LANDMARKS)
    assert not chosen & set(JAW_LANDMARKS)
    assert {33, 263, 1, 168, 10, 234, 454, 468 + 1} <= chosen  # eyes, nose, forehead, cheeks, iris
    assert 152 not in chosen and 13 not in chosen  # chin, inner upper lip


def test_real_clip_reference_is_nearest_outside_exclusion_window(prepared):
    shard = load_file(str(prepared.dataset / "shards" / "grid_bbaf2n.mpg.safetensors"))
    landmarks, valid, shots = shard["landmarks"], shard["valid"].astype(bool), shard["shot"]
    assert len(valid) == 75 and valid.all()
    for k in (24, 12, 0):
        got = check_against_brute_force(landmarks, valid, shots, k)
        assert (got != NO_REFERENCE).all()  # 75 frames: every frame has a frame more than 24 away
    # What prepare stored is the default k = 24 selection.
    assert np.array_equal(shard["reference"], select_references(landmarks, valid, exclusion_frames=24, shot_ids=shots))


def test_real_clip_selection_ignores_lips_and_jaw(prepared):
    shard = load_file(str(prepared.dataset / "shards" / "grid_bbaf2n.mpg.safetensors"))
    landmarks, valid = shard["landmarks"].copy(), shard["valid"].astype(bool)
    before = select_references(landmarks, valid, exclusion_frames=12)
    rng = np.random.default_rng(0)
    moved = list(LIP_LANDMARKS + JAW_LANDMARKS)
    landmarks[:, moved] += rng.normal(0, 20, size=(len(landmarks), len(moved), 2)).astype(np.float32)
    assert np.array_equal(before, select_references(landmarks, valid, exclusion_frames=12))


def test_random_cases_match_brute_force_with_invalid_frames_and_cuts():
    rng = np.random.default_rng(1)
    for n, k in ((40, 5), (60, 12), (30, 24)):
        landmarks = rng.normal(100, 5, size=(n, 478, 2)).astype(np.float32)
        valid = rng.random(n) > 0.2
        landmarks[~valid] = np.nan  # invalid frames carry no landmarks
        shots = shot_ids_from_cuts(n, [n // 3, n // 2])
        check_against_brute_force(landmarks, valid, shots, k)


def test_never_across_a_cut_even_when_the_other_shot_matches_exactly():
    """Two clips concatenated: shot B repeats shot A's landmarks, so across the cut lies a perfect match."""
    rng = np.random.default_rng(2)
    a = rng.normal(100, 3, size=(30, 478, 2)).astype(np.float32)
    landmarks = np.concatenate([a, a])  # frame i and i + 30 are identical, 30 > k apart
    valid = np.ones(60, bool)
    shots = shot_ids_from_cuts(60, [30])
    got = check_against_brute_force(landmarks, valid, shots, 4)
    assert (got[:30] < 30).all() and (got[30:] >= 30).all()
    # Without the cut, the identical frame across it would win.
    no_cut = select_references(landmarks, valid, exclusion_frames=4)
    assert np.array_equal(no_cut, np.r_[np.arange(30, 60), np.arange(0, 30)])


def test_short_shot_and_invalid_frames_get_no_reference():
    landmarks = np.random.default_rng(3).normal(100, 3, size=(20, 478, 2))
    valid = np.ones(20, bool)
    valid[3] = False
    got = select_references(landmarks, valid, exclusion_frames=12)
    assert got[3] == NO_REFERENCE
    assert (got[7:13] == NO_REFERENCE).all()  # no frame more than 12 away inside 20 frames
    assert got[0] in range(13, 20) and got[19] in range(0, 7)
    with pytest.raises(InvalidArgumentError):
        select_references(landmarks, valid, exclusion_frames=-1)
