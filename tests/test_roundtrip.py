"""The foundation's promise on every shared clip: decode → track → crop → paste the
unchanged crop back → lossless encode → decode gives the source frames back, with the
source's frame count, rate and timecode.

Pixels outside the paste-back matte must be bit-identical; inside, within rounding (1 level).
Each clip's first :data:`MAX_FRAMES` frames: the promise is per frame, and 150 frames of each clip took
three minutes of the suite.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edidub_engine.face import FaceTracker, feathered_matte, lower_face_mask, paste_back, track_and_align, warp_crop
from edidub_engine.media import ClipWriter, Codec, iter_frames, probe_video

FOOTAGE = Path(__file__).resolve().parents[1].parent / "shared" / "footage"
CLIPS = sorted(p.name for p in FOOTAGE.glob("*") if p.suffix in {".mp4", ".mpg", ".mov"}) if FOOTAGE.is_dir() else []
CROP = 224
FEATHER_PX = 8
MAX_FRAMES = 40


def _matte_footprint(shape: tuple[int, int], matrix: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """Where the matte reaches into the frame (any non-zero weight after the inverse warp)."""
    height, width = shape
    inverse = cv2.invertAffineTransform(matrix)
    warped = cv2.warpAffine(matte, inverse, (width, height), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return cv2.dilate((warped > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0


@pytest.mark.skipif(not CLIPS, reason=f"shared footage folder {FOOTAGE} is absent")
@pytest.mark.parametrize("name", CLIPS)
def test_unchanged_paste_back_round_trips_losslessly(name, tmp_path):
    source = probe_video(FOOTAGE / name)
    frames = min(source.frame_count, MAX_FRAMES)
    out_path = tmp_path / f"{Path(name).stem}.mkv"
    footprints: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # frame → (matrix, matte): small, not frames
    pasted = 0
    with FaceTracker() as tracker, ClipWriter(
        out_path, width=source.width, height=source.height, rate=source.rate, codec=Codec.FFV1,
        timecode=source.start_timecode,
    ) as writer:
        for tracked in track_and_align(iter_frames(source, 0, frames), tracker=tracker):
            frame = tracked.frame
            if tracked.alignment.valid:
                matrix = tracked.alignment.matrix_for(CROP)
                crop = warp_crop(frame, matrix, CROP)
                matte = feathered_matte(lower_face_mask(tracked.observation.landmarks, matrix, CROP), feather_px=FEATHER_PX)
                frame = paste_back(frame, crop, crop, matrix, matte)
                footprints[tracked.frame_index] = (matrix, matte)
                pasted += 1
            writer.write(frame)

    result = probe_video(out_path)
    assert (result.frame_count, result.rate, result.start_timecode) == (frames, source.rate, source.start_timecode)
    assert (result.width, result.height) == (source.width, source.height)
    if name.startswith(("grid_", "mead_", "real3d_", "retalking_")):
        assert pasted >= 0.9 * frames, "a frontal talking head must be tracked almost everywhere"

    compared = 0
    for (i, original), (j, decoded) in zip(iter_frames(source, 0, frames), iter_frames(result), strict=True):
        assert i == j
        diff = np.abs(decoded.astype(np.int16) - original.astype(np.int16)).max(axis=2)
        if i in footprints:
            inside = _matte_footprint(original.shape[:2], *footprints[i])
            assert diff[~inside].max(initial=0) == 0, f"frame {i}: a pixel outside the matte changed"
            assert diff[inside].max(initial=0) <= 1, f"frame {i}: the unchanged crop did not come back"
        else:
            assert diff.max() == 0, f"frame {i} had no face and must pass through untouched"
        compared += 1
    assert compared == frames
