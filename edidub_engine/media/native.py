"""The source's own pixels: a decoded picture's planes, changed only where the edit is.

A graded timeline cuts the dub next to its own original, so outside the mouth the dub must
be the original sample for sample, in its own pixel format and bit depth. The networks work
on 8-bit RGB crops; only their *change* comes back to the native picture:

    out = src + rint(M · change)

where ``change`` is the paste-back's RGB change in 8-bit levels, already weighted by the
feathered matte (zero wherever the matte is), and ``M`` the linear part of the source's own
RGB→Y'CbCr conversion (its matrix — BT.601/709/2020 — its range and its bit depth; the
identity, scaled, for RGB formats). Chroma planes get the mean change of the pixels they
cover. So a sample the matte does not reach gets a change of exactly 0 and keeps its value;
inside the matte the source keeps its detail below the 8-bit step, and nothing is converted
to RGB and back. Transfer (SDR, PQ, HLG) does not enter: the change is in the source's own
non-linear code values, as the crops are.

Packed and semi-planar layouts (``nv12``, ``uyvy422``, ``bgr0``…) are first re-laid out as the
planar format of the same depth and subsampling, which swscale does without loss.

Float RGB (an EXR plate, ``gbrpf32le``) is scene-linear: its change goes through the view transform
the networks saw the plate through and back (:mod:`.linear`), again only where the change is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

__all__ = ["NativePicture", "planar_format"]

# Kr, Kb of each matrix code (ITU-T H.273); the Kg of the luma sum is 1 - Kr - Kb.
_LUMA_WEIGHTS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 6: (0.299, 0.114), 7: (0.212, 0.087),
                 9: (0.2627, 0.0593), 10: (0.2627, 0.0593)}
_SWS_WEIGHTS = {"ITU709": (0.2126, 0.0722), "ITU601": (0.299, 0.114)}


_FLOAT_PLANAR = {"gbrpf32le", "gbrapf32le"}
_FLOAT_TWINS = {"rgbf32le": "gbrpf32le", "rgbaf32le": "gbrapf32le", "gbrpf16le": "gbrpf32le", "gbrapf16le": "gbrapf32le",
                "rgbf16le": "gbrpf32le", "rgbaf16le": "gbrapf32le"}


def _simple_planar(fmt: av.VideoFormat) -> bool:
    """Every component on a plane of its own, native-endian words, no palette or Bayer."""
    comps = fmt.components
    return (fmt.is_planar and not fmt.has_palette and not fmt.is_bayer and not fmt.is_big_endian
            and len({c.plane for c in comps}) == len(comps) and all(c.bits <= 16 for c in comps)) or fmt.name in _FLOAT_PLANAR


def planar_format(pix_fmt: str) -> str | None:
    """The planar pixel format a picture of ``pix_fmt`` is changed in: itself when it is planar,
    else the planar format of the same depth and subsampling; None when there is none."""
    try:
        fmt = av.VideoFormat(pix_fmt, 64, 64)
    except (ValueError, TypeError):
        return None
    if _simple_planar(fmt):
        return fmt.name
    if fmt.name in _FLOAT_TWINS or "f32" in fmt.name or "f16" in fmt.name:
        return _FLOAT_TWINS.get(fmt.name)
    if fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream:
        return None
    bits = max(c.bits for c in fmt.components)
    depth = "" if bits <= 8 else f"{min(16, bits + (bits % 2))}le"
    alpha = any(c.is_alpha for c in fmt.components)
    if fmt.is_rgb:
        name = ("gbrap" if alpha else "gbrp") + depth
    else:
        if len(fmt.components) < 3:
            return None
        sub = {(0, 0): "444", (1, 0): "422", (1, 1): "420", (2, 0): "411", (0, 1): "440"}.get(_chroma_shifts(fmt))
        if sub is None:
            return None
        name = f"yuv{'a' if alpha else ''}{sub}p{depth}"
    try:
        return name if _simple_planar(av.VideoFormat(name)) else None
    except ValueError:
        return None


def _chroma_shifts(fmt: av.VideoFormat) -> tuple[int, int]:
    """The pixel format's log2 chroma subsampling (``log2_chroma_w``, ``log2_chroma_h``): PyAV shows them
    only through ``chroma_width``/``chroma_height``, which round up, so they are read off a power of two
    (exact at any shift); plane sizes cannot give them (853 wide in 4:2:0 has 427 chroma columns)."""
    probe = 1 << 16
    return 17 - fmt.chroma_width(probe).bit_length(), 17 - fmt.chroma_height(probe).bit_length()


@dataclass(frozen=True)
class _Plane:
    array: np.ndarray  # [h, w] of the plane's samples (uint8, uint16 or float32), writable
    kind: str  # "Y", "Cb", "Cr", "R", "G", "B", "A"
    bits: int  # 32: float, scene-linear
    sub_x: int  # log2 of the horizontal / vertical subsampling
    sub_y: int


class NativePicture:
    """One picture's planes as writable arrays (a copy of the decoded frame), to change a region and encode.

    ``tags`` is the source's colour description, a :class:`~edidub_engine.media.probe.ColorTags`
    (matrix and range; its stated defaults where untagged).
    """

    def __init__(self, frame: av.VideoFrame, tags):
        layout = planar_format(frame.format.name)
        if layout is None:
            raise ValueError(f"pixel format {frame.format.name} has no planar layout to composite in")
        if layout != frame.format.name:
            frame = frame.reformat(format=layout)
        self.format = layout
        self.width, self.height = frame.width, frame.height
        fmt = frame.format
        self.rgb = fmt.is_rgb
        self.full_range = tags.full_range or fmt.name.startswith("yuvj") or self.rgb
        matrix = tags.matrix if tags.matrix in _LUMA_WEIGHTS else None
        self.kr, self.kb = _LUMA_WEIGHTS[matrix] if matrix else _SWS_WEIGHTS[tags.conversion_matrix(self.width, self.height)]
        self.colorspace, self.color_range = int(frame.colorspace), int(frame.color_range)
        self.planes: list[_Plane] = []
        rgb_kinds = iter("RGB")
        chroma_sub = _chroma_shifts(fmt)
        for c in fmt.components:
            plane = frame.planes[c.plane]
            dtype = np.float32 if c.bits == 32 else (np.uint8 if c.bits <= 8 else np.uint16)
            words = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype().itemsize)
            sub_x, sub_y = chroma_sub if c.index in (1, 2) and not self.rgb else (0, 0)
            if c.is_alpha:
                kind = "A"
            elif self.rgb:
                kind = next(rgb_kinds)  # components are listed R, G, B whatever their planes
            else:
                kind = "Y" if c.is_luma else ("Cb" if c.index == 1 else "Cr")
            self.planes.append(_Plane(words[:, : plane.width].copy(), kind, c.bits, sub_x, sub_y))
        self._order = [c.plane for c in fmt.components]

    # ------------------------------------------------------------------ the change
    def _scales(self, bits: int) -> tuple[float, float]:
        """Code values per unit of normalised luma (or RGB) and of normalised chroma."""
        if self.full_range:
            top = float((1 << bits) - 1)
            return top, top
        step = float(1 << (bits - 8))
        return 219.0 * step, 224.0 * step

    def add_change(self, x0: int, y0: int, change: np.ndarray) -> None:
        """Add ``change`` — ``[h, w, 3]`` float32 RGB in 8-bit levels, matte-weighted, zero outside the
        matte — to the region whose top-left frame pixel is ``(x0, y0)``; samples it does not reach keep
        their value exactly."""
        h, w = change.shape[:2]
        d = change.astype(np.float64, copy=False) / 255.0
        dr, dg, db = d[..., 0], d[..., 1], d[..., 2]
        if self.rgb:
            components = {"R": dr, "G": dg, "B": db}
        else:
            kr, kb = self.kr, self.kb
            dy = kr * dr + (1.0 - kr - kb) * dg + kb * db
            components = {"Y": dy, "Cb": (db - dy) / (2.0 * (1.0 - kb)), "Cr": (dr - dy) / (2.0 * (1.0 - kr))}
        for plane in self.planes:
            if plane.kind == "A":
                continue
            if plane.bits == 32:
                self._add_linear(plane, x0, y0, components[plane.kind])
                continue
            luma_scale, chroma_scale = self._scales(plane.bits)
            values = components[plane.kind] * (chroma_scale if plane.kind in ("Cb", "Cr") else luma_scale)
            px, py = plane.sub_x, plane.sub_y
            if px or py:  # the mean change over each chroma sample's block, blocks aligned to the frame
                bx, by = 1 << px, 1 << py
                left, top = x0 % bx, y0 % by
                padded = np.zeros((-(-(top + h) // by) * by, -(-(left + w) // bx) * bx))
                padded[top : top + h, left : left + w] = values
                values = padded.reshape(padded.shape[0] // by, by, padded.shape[1] // bx, bx).mean(axis=(1, 3))
            cx, cy = x0 >> px, y0 >> py
            region = plane.array[cy : cy + values.shape[0], cx : cx + values.shape[1]]
            values = values[: region.shape[0], : region.shape[1]]
            top_code = (1 << plane.bits) - 1
            region[...] = np.clip(region + np.rint(values), 0, top_code).astype(region.dtype)

    @staticmethod
    def _add_linear(plane: _Plane, x0: int, y0: int, change: np.ndarray) -> None:
        """A scene-linear plane: the display-referred change through the view transform and back (:mod:`.linear`)."""
        from edidub_engine.media.linear import to_display, to_linear

        region = plane.array[y0 : y0 + change.shape[0], x0 : x0 + change.shape[1]]
        change = change[: region.shape[0], : region.shape[1]]
        shown = to_display(region)
        delta = to_linear(shown + change) - to_linear(shown)
        region[...] = np.where(change != 0, region + delta, region).astype(np.float32)

    # ------------------------------------------------------------------ out
    def to_frame(self) -> av.VideoFrame:
        """A new frame in :attr:`format` holding the planes, with the source's colour properties."""
        frame = av.VideoFrame(self.width, self.height, self.format)
        for plane, index in zip(self.planes, self._order):
            target = frame.planes[index]
            words = np.frombuffer(target, dtype=plane.array.dtype).reshape(target.height, -1)
            words[:, : plane.array.shape[1]] = plane.array
        frame.colorspace, frame.color_range = self.colorspace, self.color_range
        return frame

    def sample(self, kind: str) -> np.ndarray:
        """The plane of one component (``"Y"``, ``"Cb"``, ``"Cr"``, ``"R"``…), for tests and checks."""
        return next(p.array for p in self.planes if p.kind == kind)
