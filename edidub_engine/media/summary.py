"""What a clip's pictures are, and what a dub keeps of them, in words (``edidub analyze``, ``edidub doctor --clip``)."""

from __future__ import annotations

from edidub_engine.media.decode import source_hdr
from edidub_engine.media.info import VideoInfo, pixel_bit_depth
from edidub_engine.media.native import planar_format

__all__ = ["picture_summary"]


def picture_summary(info: VideoInfo) -> dict:
    """A clip's pixel format, bit depth and colour tags, and in words what a dub keeps of them (``edidub analyze``)."""
    depth = pixel_bit_depth(info.pix_fmt)
    if info.sequence is not None and info.codec == "exr":  # decoded as float32; the files hold half or float
        depth = 16 if info.codec_profile == "half" else 32
    hdr = info.color.transfer in (16, 18)
    layout = planar_format(info.pix_fmt or "")
    if layout is None:
        keeps = ("the dub keeps the colour tags and converts with the clip's own matrix and range; this pixel format has no "
                 "planar layout, so frames pass through 8-bit RGB and outside the mouth samples can differ by a level or two")
    else:
        keeps = (f"outside the mouth the dub is the source sample for sample in its own {layout}"
                 f"{' (re-laid out from ' + str(info.pix_fmt) + ' without loss)' if layout != info.pix_fmt else ''}, with its colour "
                 "tags; inside the matte only the edit's change is added to the source's samples. Exact in FFV1 "
                 "(lossless, in the source's format); ProRes 422 HQ (10-bit 4:2:2) and H.264 (8-bit 4:2:0) add their own "
                 "generation loss")
        if depth and depth > 10:
            keeps += f", and store {depth}-bit samples at 10 (ProRes) or 8 (H.264) bits"
    mastering = None
    if hdr:
        mastering = source_hdr(info)
        keeps += "; the networks see the PQ/HLG signal as coded (no tone mapping)"
        keeps += (f"; its HDR10 metadata ({mastering.describe()}) goes into .mov outputs (ProRes, DNxHR), not into FFV1 .mkv or H.264"
                  if mastering is not None else "; it carries no HDR10 mastering or light-level metadata")
    if info.sequence is not None:
        keeps = (f"{'an' if info.codec == 'exr' else 'a'} {info.codec.upper()} plate of {info.sequence.count} frames numbered from {info.sequence.first}"
                 f"{'' if info.sequence.rate_declared else f' (no rate in its files: {info.rate} fps assumed, --rate sets it)'}; "
                 + ("dubbed to EXR (--codec exr) every sample outside the mouth keeps its bits and every frame its number and "
                    "header; the networks see it through the sRGB view transform" if info.codec == "exr" else
                    "dubbed to DPX (--codec dpx) every sample outside the mouth keeps its value and every frame its number and header"))
    return {"codec": info.codec, "profile": info.codec_profile, "pix_fmt": info.pix_fmt, "bit_depth": depth,
            "color": {"matrix": info.color.matrix, "primaries": info.color.primaries, "transfer": info.color.transfer,
                      "range": info.color.range, "description": info.color.describe()},
            "hdr10": None if mastering is None else mastering.describe(),
            "dub_keeps": keeps}
