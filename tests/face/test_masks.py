"""Lower-face mask (paper §3.1: the face below the eyes) and the paste-back matte."""

from __future__ import annotations

import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.face import feathered_matte, landmarks_to_crop, lower_face_mask, smooth_alignments

MOUTH = [0, 13, 14, 17, 37, 39, 40, 61, 78, 81, 84, 87, 91, 146, 178, 181, 185, 267, 269, 270, 291, 308, 311, 314,
         317, 321, 375, 402, 405, 409, 415]  # fmt: skip
EYES = [33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
        263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466, *range(468, 478)]  # fmt: skip


@pytest.mark.parametrize(("name", "count", "size"), [("grid_bbaf2n.mpg", 20, 224), ("mead_M003_disgusted.mp4", 8, 64)])
def test_mask_covers_mouth_and_excludes_eyes(footage, tracked, name, count, size):
    clip = footage(name, count=count)
    obs = tracked(clip)
    for o, a in zip(obs, smooth_alignments(obs)):
        m = a.matrix_for(size)
        mask = lower_face_mask(o.landmarks, m, size)
        assert mask.shape == (size, size) and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        pts = np.rint(landmarks_to_crop(o.landmarks, m)).astype(int)
        assert (mask[pts[MOUTH, 1], pts[MOUTH, 0]] == 1).all()
        assert (mask[pts[[1, 4, 152], 1], pts[[1, 4, 152], 0]] == 1).all()  # nose tip, chin
        assert (mask[pts[EYES, 1], pts[EYES, 0]] == 0).all()
        assert (mask[pts[[10, 151], 1], pts[[10, 151], 0]] == 0).all()  # forehead
        assert 0.15 < mask.mean() < 0.45


def test_feathered_matte():
    mask = np.zeros((224, 224), np.float32)
    mask[80:200, 50:170] = 1
    matte = feathered_matte(mask, feather_px=12)
    assert matte.dtype == np.float32 and matte.shape == mask.shape
    assert matte.min() == 0.0 and matte.max() == 1.0
    assert (matte[95:185, 65:155] == 1).all()  # deep inside
    # Exactly 0 beyond a rim of at most 2 px (grow = min(2, 12/4)).
    grown = np.zeros_like(mask, bool)
    grown[78:202, 48:172] = True
    assert (matte[~grown] == 0).all()
    # Soft: the boundary pixels of the mask are partially transparent, monotone inward.
    row = matte[140, 45:75]
    assert (np.diff(row) >= 0).all() and 0 < matte[140, 50] < 0.5
    assert (feathered_matte(mask, feather_px=0) == mask).all()
    assert (feathered_matte(np.zeros_like(mask), feather_px=8) == 0).all()
    with pytest.raises(InvalidArgumentError):
        feathered_matte(mask, feather_px=-1)
    with pytest.raises(InvalidArgumentError):
        feathered_matte(mask[None], feather_px=4)
