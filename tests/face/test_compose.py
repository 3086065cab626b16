"""Paste-back: the unchanged crop round-trips; an edit changes the frame only under the matte."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face import (
    feathered_matte,
    landmarks_to_crop,
    lower_face_mask,
    paste_back,
    smooth_alignments,
    warp_crop,
)

CASES = [("grid_bbaf2n.mpg", 3, 224), ("mead_M003_disgusted.mp4", 3, 224), ("mead_M003_disgusted.mp4", 2, 64)]


def _prepare(footage, tracked, name, count, size):
    clip = footage(name, count=count)
    obs = tracked(clip)
    for (_, frame), o, a in zip(clip.frames, obs, smooth_alignments(obs)):
        m = a.matrix_for(size)
        crop = warp_crop(frame, m, size)
        mask = lower_face_mask(o.landmarks, m, size)
        matte = feathered_matte(mask, feather_px=max(2, size // 16))
        yield frame, o, m, crop, mask, matte


def _matte_in_frame(matte, m, shape):
    """up(matte) over the whole frame, the way paste_back samples it."""
    h, w = shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(matte, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


@pytest.mark.parametrize(("name", "count", "size"), CASES)
def test_round_trip_of_the_unchanged_crop(footage, tracked, name, count, size):
    for frame, _, m, crop, _, matte in _prepare(footage, tracked, name, count, size):
        before = frame.copy()
        out = paste_back(frame, crop, crop, m, matte)
        np.testing.assert_array_equal(frame, before)  # input untouched
        assert out is not frame and out.shape == frame.shape and out.dtype == np.uint8
        alpha = _matte_in_frame(matte, m, frame.shape)
        outside = alpha == 0
        assert outside.any() and (~outside).any()
        np.testing.assert_array_equal(out[outside], frame[outside])
        assert np.abs(out.astype(int) - frame).max() <= 1


@pytest.mark.parametrize(("name", "count", "size"), CASES)
def test_edit_changes_only_inside_the_matte(footage, tracked, name, count, size):
    for frame, o, m, crop, _, matte in _prepare(footage, tracked, name, count, size):
        edited = crop.copy()
        pts = landmarks_to_crop(o.landmarks, m)
        mouth_hull = cv2.convexHull(np.round(pts[[61, 291, 0, 17, 37, 267, 84, 314]]).astype(np.int32))
        region = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillConvexPoly(region, mouth_hull, 1)
        region = cv2.dilate(region, np.ones((5, 5), np.uint8)).astype(bool)
        edited[region] = (edited[region] * 0.3).astype(np.uint8)  # mouth region darkened
        out = paste_back(frame, edited, crop, m, matte)
        alpha = _matte_in_frame(matte, m, frame.shape)
        changed = (out != frame).any(axis=2)
        assert not (changed & (alpha == 0)).any()
        # The mouth is visibly darker in the output (lip centre, in frame pixels).
        x, y = np.rint(o.landmarks[[13, 14], :2].mean(axis=0)).astype(int)
        assert out[y, x].astype(int).sum() < 0.6 * frame[y, x].astype(int).sum()
        # Away from the edited mouth the native pixels come back exactly.
        assert changed.sum() < 0.5 * (alpha > 0).sum()


def test_zero_matte_returns_an_identical_copy(footage, tracked):
    frame, _, m, crop, _, matte = next(_prepare(footage, tracked, "grid_bbaf2n.mpg", 1, 224))
    out = paste_back(frame, 255 - crop, crop, m, np.zeros_like(matte))
    assert out is not frame
    np.testing.assert_array_equal(out, frame)


def test_bad_inputs(footage, tracked):
    frame, _, m, crop, _, matte = next(_prepare(footage, tracked, "grid_bbaf2n.mpg", 1, 224))
    with pytest.raises(InvalidArgumentError):
        paste_back(frame, crop[:100], crop, m, matte)
    with pytest.raises(InvalidArgumentError):
        paste_back(frame, crop, crop, m, matte[:100])
    with pytest.raises(InvalidArgumentError):
        paste_back(frame, crop, crop, np.zeros((2, 3)), matte)
    with pytest.raises(InvalidArgumentError):
        paste_back(frame.astype(np.float32), crop, crop, m, matte)
