"""NativePicture: an RGB change goes into a picture's own planes, and nothing else moves."""

from __future__ import annotations

import re

import av
import numpy as np
import pytest

from edidub_engine.media.native import NativePicture, planar_format
from edidub_engine.media.probe import ColorTags


def _picture(pix_fmt: str, w: int = 64, h: int = 48) -> av.VideoFrame:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt, dst_colorspace="ITU709")


def test_packed_and_semi_planar_layouts_map_to_their_planar_twin():
    assert [planar_format(f) for f in ("yuv422p10le", "nv12", "p010le", "uyvy422", "bgr0", "rgb48le", "yuva444p12le", "pal8")] == [
        "yuv422p10le", "yuv420p", "yuv420p10le", "yuv422p", "gbrp", "gbrp16le", "yuva444p12le", None]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p10le", "yuv444p12le", "gbrp10le", "yuva444p10le"])
def test_a_change_reaches_only_its_box_and_moves_luma_by_the_matrix(pix_fmt):
    source = _picture(pix_fmt)
    own = NativePicture(source, ColorTags(matrix=1, range=1))
    untouched = own.to_frame()
    for a, b in zip(source.planes, untouched.planes):
        assert np.array_equal(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8))  # no change: the same bytes
    before = [p.array.astype(int) for p in own.planes]
    change = np.zeros((10, 12, 3), np.float32)
    change[2:8, 2:10] = (40.0, -20.0, 10.0)  # 8-bit levels; zero at the box's rim, as a matte's change is
    own.add_change(20, 14, change)
    after = [p.array.astype(int) for p in NativePicture(own.to_frame(), ColorTags(matrix=1, range=1)).planes]
    for plane, b, a in zip(own.planes, before, after):
        moved = np.argwhere(a != b)
        if plane.kind == "A":
            assert moved.size == 0
            continue
        assert moved.size, plane.kind
        ys, xs = moved[:, 0] << plane.sub_y, moved[:, 1] << plane.sub_x
        assert ys.min() >= 14 and ys.max() < 24 and xs.min() >= 20 and xs.max() < 32, (plane.kind, ys.min(), ys.max(), xs.min(), xs.max())
    if not pix_fmt.startswith("gbr"):
        bits = int(re.search(r"p(\d+)le$", pix_fmt).group(1)) if pix_fmt.endswith("le") else 8
        expected = (0.2126 * 40 - 0.7152 * 20 + 0.0722 * 10) / 255 * 219 * 2 ** (bits - 8)
        luma = after[0] - before[0]
        assert abs(luma[18, 25] - expected) <= 0.5 + 1e-9
