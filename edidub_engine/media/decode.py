"""Frame-accurate, streaming decode of a range of the frame grid to RGB.

Seeking: we seek to a keyframe before the range and decode forward, mapping
each picture's pts to a grid frame (:meth:`VideoInfo.slot_of_pts`). After a
seek we check the first keyframe we landed on is at or before the range's
first frame; containers that seek imprecisely (MPEG program streams seek by
byte position) land late, so we retry further back and finally decode from the
start. Decoding starts on a keyframe, so a seek decode equals a sequential
decode bit for bit.

Variable frame rate (decision): a VFR file is conformed to a constant grid at
its nominal rate (the stream's base rate, e.g. 30 fps for a phone clip whose
average is 22.13). Grid frame *i* shows the picture on screen at
``video_start_s + i / rate`` — the last picture whose pts rounds to a grid
frame at or before *i* (frame hold); pictures faster than the grid are dropped.
Audio therefore stays in sync and the result is constant-rate, as editors'
timelines are. For a CFR file this is exactly one picture per grid frame.
Should a picture be missing at the start, the first one is held backwards.

Colour: Y'CbCr is converted with the matrix the file declares; untagged
files use BT.709 above SD size and BT.601 for SD, as players do.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation

from edidub_engine.errors import MediaDecodeError, RangeOutsideMediaError
from edidub_engine.media.probe import ColorTags, VideoInfo, open_input, probe_video

__all__ = ["iter_frames", "iter_pictures", "read_frames", "source_hdr", "to_rgb"]

# Seek this far (seconds) before the range's first frame, then further back if the landing is late.
_SEEK_BACKOFFS_S = (Fraction(0), Fraction(2), Fraction(10), Fraction(60))
# AVColorSpace → swscale matrix.
_RGB_FORMATS = {"rgb24", "gbrp", "bgr0", "rgba", "bgra", "bgr24", "0rgb", "rgb0", "argb", "abgr"}
# Full chroma interpolation: without it swscale's >8-bit → RGB path is off by ~2 levels; no slower. Known, left: the 8-bit
# path (H.264, MPEG-2) still comes out 1 to 1.5 levels dark against the exact conversion (retalking_face2: -1.0/-1.5/-1.0);
# ACCURATE_RND fixes it at 2.5x the decode time at 1080p. Outputs do not inherit it (only the change, a difference of two
# crops decoded alike, goes into the source's own pixels: media.native); the networks' input and RGB comparisons do.
_YUV_TO_RGB_FLAGS = Interpolation.BILINEAR | Interpolation.FULL_CHR_H_INT
_FULL_RANGE_FORMATS = {"yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p"}


def _resolve(source: str | os.PathLike | VideoInfo) -> VideoInfo:
    return source if isinstance(source, VideoInfo) else probe_video(source)


def _check_range(info: VideoInfo, start_frame: int, end_frame: int | None) -> tuple[int, int]:
    end = info.frame_count if end_frame is None else int(end_frame)
    start = int(start_frame)
    if not (0 <= start < end <= info.frame_count):
        raise RangeOutsideMediaError(
            f"frames [{start}, {end}) are outside {info.path.name}, which has {info.frame_count} frames "
            f"(0–{info.frame_count - 1}) at {info.rate} fps",
            hint="ask for a non-empty range inside the clip (end is exclusive)",
            details={"path": str(info.path), "start_frame": start, "end_frame": end, "frame_count": info.frame_count},
        )
    return start, end


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded picture as H×W×3 uint8 RGB (contiguous, owning its memory), with the matrix and range it declares."""
    fmt = frame.format.name
    if "f32" in fmt:  # a scene-linear plate, through the view transform (media.linear)
        from edidub_engine.media.linear import to_rgb8
        from edidub_engine.media.sequence import frame_pixels

        return to_rgb8(frame_pixels(frame)[..., :3])
    if fmt in _RGB_FORMATS:
        rgb = frame.to_ndarray(format="rgb24") if fmt != "rgb24" else frame.to_ndarray()
    else:
        tags = ColorTags(matrix=int(frame.colorspace), range=int(frame.color_range))
        matrix = tags.conversion_matrix(frame.width, frame.height)  # the encoder converts back with the same one
        full = tags.full_range or fmt in _FULL_RANGE_FORMATS
        rgb = frame.to_ndarray(
            format="rgb24",
            src_colorspace=matrix,
            dst_colorspace=matrix,
            src_color_range="JPEG" if full else "MPEG",
            dst_color_range="JPEG",
            interpolation=_YUV_TO_RGB_FLAGS,
        )
    return np.ascontiguousarray(rgb)


def _open_at(info: VideoInfo, start_frame: int, backoff_s: Fraction):
    """Open the file positioned on a keyframe at or before ``start_frame``.

    Returns ``(container, stream, packets)`` where ``packets`` yields from that
    keyframe on, or None if this container landed after the frame.
    """
    container = open_input(info.path, "video")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    target_s = info.video_start + Fraction(start_frame) / info.rate - backoff_s
    sought = start_frame > 0 and target_s > info.video_start
    if sought:
        target_pts = int(target_s / info.time_base)
        try:
            container.seek(target_pts, stream=stream, backward=True, any_frame=False)
        except av.FFmpegError:
            container.close()
            return None
    packets = container.demux(stream)
    for packet in packets:
        if packet.size == 0:
            continue
        if not sought:
            return container, stream, _chain(packet, packets)  # from the file's first packet
        if packet.is_keyframe and packet.pts is not None:
            if sought and info.slot_of_pts(packet.pts) > start_frame:
                break
            return container, stream, _chain(packet, packets)
    container.close()
    return None


def _chain(first, rest):
    yield first
    yield from rest


def _pictures(info: VideoInfo, stream, packets) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded pictures in presentation order with their grid frame."""
    last_pts = None
    step = max(1, round(1 / (info.rate * info.time_base)))
    for packet in packets:
        try:
            frames = stream.codec_context.decode(packet if packet.size else None)
        except av.FFmpegError:
            continue  # a damaged picture is skipped; its neighbours are held over it
        for frame in frames:
            pts = frame.pts if frame.pts is not None else (last_pts + step if last_pts is not None else info.start_pts)
            last_pts = pts
            yield info.slot_of_pts(pts), frame


def _decode_pictures(info: VideoInfo, start: int, end: int) -> Iterator[tuple[int, av.VideoFrame]]:
    """Grid frames ``[start, end)`` as decoded pictures; a held picture is yielded again as the same object."""
    if info.sequence is not None:
        from edidub_engine.media.sequence import iter_sequence_pictures

        yield from iter_sequence_pictures(info, start, end)
        return
    opened = None
    for backoff in _SEEK_BACKOFFS_S:
        opened = _open_at(info, start, backoff)
        if opened is not None:
            break
    if opened is None:
        opened = _open_at(info, 0, Fraction(0))  # from the first keyframe, no seek
    if opened is None:
        raise MediaDecodeError(f"{info.path.name} has no decodable keyframe", hint="re-export the clip")
    container, stream, packets = opened
    try:
        next_frame = start
        held: av.VideoFrame | None = None
        for slot, frame in _pictures(info, stream, packets):
            if held is not None:
                while next_frame < min(slot, end):
                    yield next_frame, held
                    next_frame += 1
            if next_frame >= end:
                break
            held = frame
        if held is None:
            raise MediaDecodeError(f"{info.path.name} decoded no pictures", hint="the file may be damaged; re-export it")
        while next_frame < end:  # the last picture holds to the end of the grid
            yield next_frame, held
            next_frame += 1
    finally:
        container.close()


def _decode_range(info: VideoInfo, start: int, end: int) -> Iterator[tuple[int, np.ndarray]]:
    held, rgb = None, None
    for index, picture in _decode_pictures(info, start, end):
        if picture is held:
            yield index, rgb.copy()
        else:
            held, rgb = picture, to_rgb(picture)
            yield index, rgb


def iter_frames(
    source: str | os.PathLike | VideoInfo, start_frame: int = 0, end_frame: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, H×W×3 uint8 RGB)`` for grid frames ``[start_frame, end_frame)``.

    Streaming: only the pictures in flight are held. ``end_frame=None`` means
    the end of the clip. The range is checked now, not on the first ``next``.
    """
    info = _resolve(source)
    start, end = _check_range(info, start_frame, end_frame)
    return _decode_range(info, start, end)


def iter_pictures(
    source: str | os.PathLike | VideoInfo, start_frame: int = 0, end_frame: int | None = None
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Yield ``(frame_index, decoded picture)`` in the source's own pixel format, on the same grid as
    :func:`iter_frames` (:func:`to_rgb` of each picture is what it yields). A picture held over
    several grid frames comes again as the same object: read it, never write into it (the decoder
    may still refer to its buffers)."""
    info = _resolve(source)
    start, end = _check_range(info, start_frame, end_frame)
    return _decode_pictures(info, start, end)


def read_frames(source: str | os.PathLike | VideoInfo, start_frame: int, end_frame: int) -> np.ndarray:
    """Grid frames ``[start_frame, end_frame)`` as one ``[N, H, W, 3]`` uint8 array (short ranges only)."""
    info = _resolve(source)
    start, end = _check_range(info, start_frame, end_frame)
    out = np.empty((end - start, info.height, info.width, 3), dtype=np.uint8)
    for index, rgb in _decode_range(info, start, end):
        if rgb.shape != out.shape[1:]:
            raise MediaDecodeError(
                f"{Path(info.path).name} changes picture size mid-stream ({rgb.shape[1]}×{rgb.shape[0]} at frame {index})",
                hint="conform the clip to one size before dubbing",
            )
        out[index - start] = rgb
    return out


def source_hdr(info: VideoInfo, start_frame: int = 0):
    """A PQ or HLG clip's HDR10 metadata (:class:`~edidub_engine.media.hdr.HdrMetadata`) from its picture at
    ``start_frame``; None for SDR (not decoded for it) or a clip that carries none."""
    if info.color.transfer not in (16, 18) or info.sequence is not None:
        return None
    from edidub_engine.media.hdr import hdr_from_frame

    for _, picture in _decode_pictures(info, start_frame, start_frame + 1):
        return hdr_from_frame(picture)
    return None
