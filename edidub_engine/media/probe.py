"""What a video file is: its frame grid, timecode, clocks and audio.

The frame grid is the contract every other stage works on: frames
``[0, frame_count)`` at ``rate`` (normalized, see :mod:`.timebase`), frame 0
presented at ``video_start_s`` on the file's clock (where pts 0 is 0 s).
For a constant-rate file grid frame *i* is the *i*-th picture; a variable-rate
file is conformed to the grid by frame hold (see :mod:`.decode`).

Probing demuxes every video packet once (no decoding) to read the real
timestamps: the header's frame count and rate lie too often (MPEG program
streams carry none, VFR files report an average). Results are cached per
(path, size, mtime).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from edidub_engine.errors import MediaDecodeError, MediaNotFoundError
from edidub_engine.media.info import SWS_MATRIX, ColorTags, VideoInfo, pixel_bit_depth  # noqa: F401 - re-exported
from edidub_engine.timebase import (
    frame_to_timecode,
    is_drop_frame_rate,
    normalize_rate,
    round_half_up,
    timecode_to_frame,
)

__all__ = ["ColorTags", "HeaderLengths", "VideoInfo", "pixel_bit_depth", "header_lengths", "probe_video", "open_input"]

_DEFAULT_TIMECODE_FRAME = 0
_MAX_PLAUSIBLE_RATE = 480


def open_input(path: Path, what: str = "media"):
    """Open a file for reading with PyAV, mapping failures to the engine's errors."""
    if not path.exists():
        raise MediaNotFoundError(
            f"{what} file {path} does not exist",
            hint="check the path (and that the drive holding it is mounted)",
            details={"path": str(path)},
        )
    if path.is_dir():
        raise MediaNotFoundError(f"{path} is a folder, not a {what} file", hint="name a file inside it", details={"path": str(path)})
    try:
        return av.open(str(path), mode="r")
    except PermissionError:
        raise MediaNotFoundError(f"{what} file {path} cannot be read (permission denied)", hint="check the file's permissions") from None
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)  # FFmpeg's words, without its errno
        hint = ("export the dub line as WAV or FLAC (or any file with an audio stream) and try again" if what == "audio"
                else "export the clip as a standard video file (e.g. .mov, .mp4, .mxf) and try again")
        raise MediaDecodeError(f"{path.name} is not {what} that can be decoded ({reason})", hint=hint,
                               details={"path": str(path)}) from None


def _find_timecode(container, video_stream) -> str | None:
    """The start timecode a file carries: the video stream, a tmcd data stream, then the container."""
    candidates = [video_stream.metadata]
    candidates += [s.metadata for s in container.streams if s is not video_stream and s.type == "data"]
    candidates += [s.metadata for s in container.streams if s is not video_stream and s.type != "data"]
    candidates.append(container.metadata)
    for metadata in candidates:
        for key, value in metadata.items():
            if key.lower() == "timecode" and value:
                return str(value).strip()
    return None


def _choose_rate(stream, time_base: Fraction, sorted_pts: list[int]) -> Fraction | None:
    """The grid rate: the stream's declared rate where the timestamps agree with it.

    Declared rates (guessed, base, average — in that order) can be missing or
    wrong on short or odd files; the commonest gap between pictures settles it.
    For a VFR file the commonest gap is the nominal (base) frame duration.
    """
    gaps = Counter(b - a for a, b in zip(sorted_pts, sorted_pts[1:]) if b > a)
    common_gap = gaps.most_common(1)[0][0] * time_base if gaps else None
    declared = [
        normalize_rate(Fraction(c.numerator, c.denominator))
        for c in (stream.guessed_rate, stream.base_rate, stream.average_rate)
        if c and 0 < c <= _MAX_PLAUSIBLE_RATE
    ]
    if common_gap is None:
        return declared[0] if declared else None
    for rate in declared:
        if abs(1 / rate - common_gap) <= time_base + common_gap / 200:
            return rate
    return normalize_rate((1 / common_gap).limit_denominator(100_000))


@functools.lru_cache(maxsize=256)
def _probe_cached(path_str: str, size: int, mtime_ns: int) -> VideoInfo:
    path = Path(path_str)
    container = open_input(path, "video")
    try:
        if not container.streams.video:
            raise MediaDecodeError(
                f"{path.name} has no video stream",
                hint="pass a video clip here; audio-only files are for the dub track",
                details={"path": str(path)},
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator) if stream.time_base else Fraction(1, 90000)
        pts_list: list[int] = []
        end_pts: int | None = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None or packet.is_discard:
                    continue  # discard: pre-roll an edit list trims (decoded for reference, never shown)
                pts_list.append(packet.pts)
                duration = packet.duration or 0
                end = packet.pts + duration
                end_pts = end if end_pts is None else max(end_pts, end)
        except av.FFmpegError as exc:
            raise MediaDecodeError(f"{path.name} cannot be read to its end ({exc})", hint="the file may be truncated; re-export it") from None
        if not pts_list:
            raise MediaDecodeError(f"{path.name} has a video stream with no pictures", hint="re-export the clip")

        pts_list.sort()
        rate = _choose_rate(stream, time_base, pts_list)
        if rate is None:
            raise MediaDecodeError(f"{path.name} declares no usable frame rate", hint="re-wrap or transcode the clip at a constant frame rate")
        start_pts = pts_list[0]
        one_frame_ticks = Fraction(1) / (rate * time_base)
        last_pts = pts_list[-1]
        if end_pts is None or end_pts <= last_pts:
            end_pts = last_pts + max(1, round_half_up(one_frame_ticks))

        def slot(pts: int) -> int:
            return round_half_up((pts - start_pts) * time_base * rate)

        slots = [slot(p) for p in pts_list]
        variable = any(b - a != 1 for a, b in zip(slots, slots[1:]))
        frame_count = max(slot(end_pts), slots[-1] + 1)

        file_tc = _find_timecode(container, stream)
        if file_tc is not None:
            drop_frame = any(sep in file_tc for sep in ";.,") and is_drop_frame_rate(rate)
            try:
                start_timecode = frame_to_timecode(timecode_to_frame(file_tc, rate), rate, drop_frame)
            except Exception:  # a malformed tag is not worth failing a probe over
                file_tc = None
        if file_tc is None:
            drop_frame = is_drop_frame_rate(rate)
            start_timecode = frame_to_timecode(_DEFAULT_TIMECODE_FRAME, rate, drop_frame)

        audio_stream = container.streams.audio[0] if container.streams.audio else None
        audio_rate = audio_start = audio_codec = audio_channels = None
        if audio_stream is not None:
            audio_rate = int(audio_stream.rate or audio_stream.codec_context.sample_rate)
            atb = audio_stream.time_base or Fraction(1, audio_rate)
            audio_start = float((audio_stream.start_time or 0) * Fraction(atb.numerator, atb.denominator))
            audio_codec = audio_stream.codec_context.name
            audio_channels = audio_stream.codec_context.channels

        return VideoInfo(
            path=path,
            width=int(ctx.width),
            height=int(ctx.height),
            rate=rate,
            frame_count=int(frame_count),
            start_timecode=start_timecode,
            drop_frame=bool(drop_frame),
            codec=ctx.name,
            variable_frame_rate=variable,
            video_start_s=float(start_pts * time_base),
            has_audio=audio_stream is not None,
            audio_sample_rate_hz=audio_rate,
            audio_start_s=audio_start,
            duration_s=float(frame_count / rate),
            pix_fmt=ctx.pix_fmt,
            codec_profile=ctx.profile or None,
            audio_codec=audio_codec,
            audio_channels=audio_channels,
            color=ColorTags(matrix=int(ctx.colorspace or 2), primaries=int(ctx.color_primaries or 2),
                            transfer=int(ctx.color_trc or 2), range=int(ctx.color_range or 0)),
            time_base=time_base,
            start_pts=start_pts,
        )
    finally:
        container.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video file's grid, timecode and clocks.

    Raises MediaNotFoundError for a missing file, MediaDecodeError for a file
    that is not video (text, audio-only). An EXR or DPX plate (``sh010.%04d.exr``,
    ``sh010.####.dpx`` or its folder) is probed from its files (:mod:`.sequence`).
    """
    from edidub_engine.media.sequence import find_sequence, probe_sequence

    files = find_sequence(path)
    if files is not None:
        return probe_sequence(files)
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise MediaNotFoundError(
            f"video file {resolved} does not exist",
            hint="check the path (and that the drive holding it is mounted)",
            details={"path": str(resolved)},
        )
    stat = resolved.stat()
    return _probe_cached(str(resolved), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class HeaderLengths:
    """What a file's headers say about its length, in seconds (None: they do not say).

    Estimates, not the frame grid: MPEG program streams estimate from the bit rate.
    Good enough to refuse a range far past a file's end at once (the daemon's submit
    check); :func:`probe_video` stays the exact reference the renderer uses.
    """

    video_s: float | None
    audio_s: float | None
    video_rate: Fraction | None = None


@functools.lru_cache(maxsize=512)
def _header_cached(path_str: str, size: int, mtime_ns: int) -> HeaderLengths:
    container = open_input(Path(path_str))
    try:
        whole = container.duration / av.time_base if container.duration else None

        def length(streams) -> float | None:
            if not streams:
                return None
            stream = streams[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            return whole

        video = container.streams.video
        rate = (video[0].average_rate or video[0].guessed_rate) if video else None
        return HeaderLengths(video_s=length(video), audio_s=length(container.streams.audio),
                             video_rate=Fraction(rate.numerator, rate.denominator) if rate else None)
    finally:
        container.close()


def header_lengths(path: str | os.PathLike) -> HeaderLengths:
    """A media file's video and audio length from its headers only, in milliseconds for any file size (cached)."""
    resolved = Path(path)
    if not resolved.exists():
        from edidub_engine.media.sequence import find_sequence, probe_sequence

        files = find_sequence(resolved)
        if files is not None:  # an image sequence: its frames at its rate
            info = probe_sequence(files)
            return HeaderLengths(video_s=info.duration_s, audio_s=None, video_rate=info.rate)
    stat = resolved.stat()
    return _header_cached(str(resolved), stat.st_size, stat.st_mtime_ns)
