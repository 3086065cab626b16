"""Audio as the models want it: mono float32 at a chosen rate, cut exactly.

Times are on the file's presentation clock (pts 0 is 0 s), the same clock as
:attr:`VideoInfo.video_start_s`, so audio under a frame range lines up with
the picture even when the streams start at different times (a stream that
starts late is zero-padded before its start; reading past the end is
zero-padded; a start beyond the end is an error).

Resampling is PyAV's ``AudioResampler`` (libswresample); channels are then
averaged to mono (a plain mean, so a stereo file with the voice in one channel
keeps half its level rather than clipping). In MP4/MOV the declared stream
duration trims the encoder padding AAC adds to fill its last 1024-sample frame.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from edidub_engine.errors import InvalidArgumentError, MediaDecodeError, RangeOutsideMediaError
from edidub_engine.media.probe import VideoInfo, open_input, probe_video
from edidub_engine.timebase import round_half_up

__all__ = ["load_audio", "load_audio_for_frames"]

# Seek this much before the start so decoders with overlap (AAC, MP3) settle before it.
_SEEK_PREROLL_S = Fraction(1)
_TRUSTED_DURATION_FORMATS = ("mov", "mp4")


def _exact(seconds: float | Fraction) -> Fraction:
    return seconds if isinstance(seconds, Fraction) else Fraction(seconds).limit_denominator(10**9)


def _decode_span(path: Path, start: Fraction, end: Fraction | None, sample_rate_hz: int, seek: bool):
    """Decode mono float32 from before ``start`` to ``end`` (or the end).

    Returns ``(samples, t0, stream_end)``: ``samples[k]`` is at ``t0 + k / sample_rate_hz``;
    ``stream_end`` is the end of the audio on the file clock. None if a seek landed late.
    """
    container = open_input(path, "audio")
    try:
        if not container.streams.audio:
            raise MediaDecodeError(
                f"{path.name} has no audio stream",
                hint="pass a file with sound (wav, flac, or a video with an audio track)",
                details={"path": str(path)},
            )
        stream = container.streams.audio[0]
        time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
        stream_start = (stream.start_time or 0) * time_base
        declared_end = None
        if stream.duration and any(name in container.format.name.split(",") for name in _TRUSTED_DURATION_FORMATS):
            declared_end = stream_start + stream.duration * time_base
        sought = seek and start - _SEEK_PREROLL_S > stream_start
        if sought:
            try:
                container.seek(int((start - _SEEK_PREROLL_S) / time_base), stream=stream, backward=True)
            except av.FFmpegError:
                return None
        resampler = av.AudioResampler(format="fltp", rate=sample_rate_hz)
        chunks: list[np.ndarray] = []
        count = 0
        t0: Fraction | None = None  # file-clock time of the first sample fed to the resampler
        first: Fraction | None = None  # file-clock time of the first real (decoded) sample
        fed = 0  # input samples fed so far
        input_rate = None
        input_end = stream_start

        def feed(frame):
            nonlocal count
            for out in resampler.resample(frame):
                block = out.to_ndarray()
                chunks.append(block.mean(axis=0, dtype=np.float32) if block.shape[0] > 1 else block[0])
                count += out.samples

        for packet in container.demux(stream):
            try:
                frames = stream.codec_context.decode(packet if packet.size else None)
            except av.FFmpegError:
                continue  # a damaged packet (or one cut by a seek) leaves a gap, filled with silence below
            for frame in frames:
                frame_time = frame.pts * time_base if frame.pts is not None else None
                if t0 is None:
                    input_rate = frame.sample_rate
                    first = frame_time if frame_time is not None else stream_start
                    if sought and first > start:
                        return None
                    # Start on the grid both rates share (k / gcd s), padding silence before the
                    # first sample, so every read of a file resamples on the same sample positions.
                    first_samples = round_half_up(first * input_rate)
                    pad = first_samples % (input_rate // math.gcd(input_rate, sample_rate_hz))
                    t0 = Fraction(first_samples - pad, input_rate)
                    if pad:
                        feed(_silence_like(frame, pad))
                    fed = pad
                elif frame_time is not None:
                    gap = round_half_up((frame_time - t0) * input_rate) - fed
                    if gap > input_rate // 500:  # more than 2 ms missing: keep later audio in place
                        feed(_silence_like(frame, gap))
                        fed += gap
                feed(frame)
                fed += frame.samples
                input_end = t0 + Fraction(fed, input_rate)
            if end is not None and t0 is not None and t0 + Fraction(count, sample_rate_hz) > end + Fraction(1, 10):
                break
        else:
            feed(None)
    except av.FFmpegError as exc:
        raise MediaDecodeError(f"{path.name} failed to decode its audio ({exc})", hint="the file may be damaged; re-export it") from None
    finally:
        container.close()
    if t0 is None:
        t0 = first = stream_start
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    stream_end = input_end if declared_end is None else min(input_end, declared_end)
    # Before its first sample a stream is silent: drop the resampler's ringing into the padding.
    samples[: max(0, math.ceil((first - t0) * sample_rate_hz))] = 0.0
    return samples, t0, stream_end


def _silence_like(frame: av.AudioFrame, samples: int) -> av.AudioFrame:
    """A frame of ``samples`` zeros in the format, layout and rate of ``frame``."""
    fmt = frame.format
    channels = len(frame.layout.channels)
    shape = (channels, samples) if fmt.is_planar else (1, samples * channels)
    silence = av.AudioFrame.from_ndarray(np.zeros(shape, dtype=_DTYPES[fmt.name]), format=fmt.name, layout=frame.layout.name)
    silence.sample_rate = frame.sample_rate
    return silence


_DTYPES = {"u8": "u1", "s16": "i2", "s32": "i4", "flt": "f4", "dbl": "f8", "s64": "i8"}
_DTYPES.update({name + "p": dtype for name, dtype in list(_DTYPES.items())})


def load_audio(
    path: str | os.PathLike,
    *,
    start_s: float | Fraction = 0.0,
    duration_s: float | Fraction | None = None,
    sample_rate_hz: int = 16000,
) -> np.ndarray:
    """Mono float32 samples from ``start_s`` for ``duration_s`` at ``sample_rate_hz``.

    Exactly ``round(duration_s * sample_rate_hz)`` samples, or to the end of
    the audio when ``duration_s`` is None.
    """
    path = Path(path).expanduser()
    if int(sample_rate_hz) != sample_rate_hz or sample_rate_hz <= 0:
        raise InvalidArgumentError(f"sample_rate_hz={sample_rate_hz} is not a positive whole number", hint="use e.g. 16000 or 48000")
    sample_rate_hz = int(sample_rate_hz)
    start = _exact(start_s)
    if start < 0:
        raise RangeOutsideMediaError(f"start_s={float(start)} is before the start of {path.name}", hint="times start at 0 s")
    if duration_s is not None and duration_s < 0:
        raise InvalidArgumentError(f"duration_s={float(duration_s)} is negative for {path.name}", hint="pass a length of 0 s or more")
    end = None if duration_s is None else start + _exact(duration_s)

    decoded = _decode_span(path, start, end, sample_rate_hz, seek=True)
    if decoded is None:  # the container seeked past the start: decode from the beginning
        decoded = _decode_span(path, start, end, sample_rate_hz, seek=False)
    samples, t0, stream_end = decoded
    if start >= stream_end and (end is None or end > start):
        raise RangeOutsideMediaError(
            f"start_s={float(start):.3f} is beyond the end of {path.name}, whose audio ends at {float(stream_end):.3f} s",
            hint="ask for audio inside the file",
            details={"path": str(path), "start_s": float(start), "end_s": float(stream_end)},
        )
    # Keep only samples before the audio's end (drops AAC's encoder padding).
    available = max(0, min(len(samples), round_half_up((stream_end - t0) * sample_rate_hz)))
    samples = samples[:available]
    if end is None:
        count = max(0, round_half_up((stream_end - start) * sample_rate_hz))
    else:
        count = round_half_up((end - start) * sample_rate_hz)
    offset = round_half_up((start - t0) * sample_rate_hz)  # negative: the stream starts after `start`
    out = np.zeros(count, dtype=np.float32)
    src_from = max(offset, 0)
    dst_from = src_from - offset
    n = max(0, min(count - dst_from, len(samples) - src_from))
    if n > 0:
        out[dst_from : dst_from + n] = samples[src_from : src_from + n]
    return out


def load_audio_for_frames(
    source: str | os.PathLike | VideoInfo, start_frame: int, end_frame: int, *, sample_rate_hz: int = 16000
) -> np.ndarray:
    """The audio under grid frames ``[start_frame, end_frame)`` of a video.

    Starts at ``video_start_s + start_frame / rate`` and is exactly
    ``round((end_frame - start_frame) / rate * sample_rate_hz)`` samples long.
    """
    info = source if isinstance(source, VideoInfo) else probe_video(source)
    if not (0 <= start_frame < end_frame <= info.frame_count):
        raise RangeOutsideMediaError(
            f"frames [{start_frame}, {end_frame}) are outside {info.path.name}, which has {info.frame_count} frames "
            f"(0–{info.frame_count - 1}) at {info.rate} fps",
            hint="ask for a non-empty range inside the clip (end is exclusive)",
        )
    if not info.has_audio:
        raise MediaDecodeError(
            f"{info.path.name} has no audio stream",
            hint="give the dub/original audio as a separate file (e.g. the matching .wav)",
            details={"path": str(info.path)},
        )
    start = info.video_start + Fraction(start_frame) / info.rate
    duration = Fraction(end_frame - start_frame) / info.rate
    return load_audio(info.path, start_s=start, duration_s=duration, sample_rate_hz=sample_rate_hz)
