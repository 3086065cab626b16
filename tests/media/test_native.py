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
    # the subsampling is the format's own (log2 chroma shifts): 4:1:1 and unsubsampled packed Y'CbCr too
    assert [planar_format(f) for f in ("uyyvyy411", "nv24", "vuya", "xv30le", "y210le")] == [
        "yuv411p", "yuv444p", "yuva444p", "yuv444p10le", "yuv422p10le"]


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


def _grey_frame(pix_fmt: str, w: int, h: int) -> av.VideoFrame:
    """A mid-grey picture in ``pix_fmt``; uyyvyy411 (DV's packed 4:1:1), which swscale reads but cannot
    write, is filled byte by byte (U, Y, Y, V, Y, Y at 128)."""
    if pix_fmt == "uyyvyy411":
        frame = av.VideoFrame(w, h, pix_fmt)
        np.frombuffer(frame.planes[0], np.uint8)[:] = 128
        return frame
    return av.VideoFrame.from_ndarray(np.full((h, w, 3), 128, np.uint8), format="rgb24").reformat(format=pix_fmt)


# (format, width, height, log2 chroma shifts): odd sizes, where a division of plane sizes reads
# 853 // 427 = 1 and takes 4:2:0 for 4:4:4 (issue 34).
ODD_SIZES = [
    ("yuv420p", 853, 481, (1, 1)), ("yuv420p10le", 853, 480, (1, 1)), ("yuv422p", 853, 481, (1, 0)),
    ("yuv422p10le", 641, 359, (1, 0)), ("yuv411p", 853, 481, (2, 0)), ("yuv411p", 854, 480, (2, 0)),
    ("yuv410p", 853, 481, (2, 2)), ("yuv440p", 853, 481, (0, 1)),
    # packed and semi-planar, re-laid out as their planar twin first
    ("nv12", 853, 481, (1, 1)), ("p010le", 853, 481, (1, 1)), ("nv16", 853, 481, (1, 0)),
    ("uyvy422", 853, 481, (1, 0)), ("yuyv422", 853, 481, (1, 0)), ("y210le", 853, 481, (1, 0)),
    ("uyyvyy411", 853, 481, (2, 0)), ("nv24", 853, 481, (0, 0)), ("vuya", 853, 481, (0, 0)), ("xv30le", 853, 481, (0, 0)),
]


@pytest.mark.parametrize("pix_fmt,w,h,shifts", ODD_SIZES, ids=[f"{f}-{w}x{h}" for f, w, h, _ in ODD_SIZES])
def test_chroma_lands_under_the_luma_change_at_odd_sizes(pix_fmt, w, h, shifts):
    own = NativePicture(_grey_frame(pix_fmt, w, h), ColorTags(matrix=1, range=1))
    for plane in own.planes:
        assert (plane.sub_x, plane.sub_y) == (shifts if plane.kind in ("Cb", "Cr") else (0, 0)), plane.kind
    x0, y0 = w - 153, h - 81  # odd offsets, as a face's box is
    yy, xx = np.mgrid[0:60, 0:80]
    blob = np.exp(-(((xx - 47.0) / 9) ** 2 + ((yy - 21.0) / 7) ** 2))  # centred at frame pixel (x0 + 47, y0 + 21)
    change = np.zeros((60, 80, 3), np.float32)
    change[..., 0], change[..., 2] = 60 * blob, -60 * blob  # redder, less blue: Y, Cb and Cr all move
    before = [p.array.astype(float) for p in own.planes]
    own.add_change(x0, y0, change)
    for plane, b in zip(own.planes, before):
        moved = np.abs(plane.array - b)
        if plane.kind == "A":
            assert moved.sum() == 0
            continue
        assert moved.sum() > 0, plane.kind
        ys, xs = np.nonzero(moved)
        weights = moved[ys, xs]
        # a sample's centre in frame pixels: the middle of the block of pixels it covers
        cx = np.average((xs + 0.5) * (1 << plane.sub_x) - 0.5, weights=weights)
        cy = np.average((ys + 0.5) * (1 << plane.sub_y) - 0.5, weights=weights)
        assert abs(cx - (x0 + 47)) <= 1.5 and abs(cy - (y0 + 21)) <= 1.5, (plane.kind, cx - x0, cy - y0)
