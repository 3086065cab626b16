"""Media I/O: probe, frame-accurate decode, audio, timecode, atomic encode.

The only package in EdiDub that imports PyAV. Frames are grid indices in
half-open ranges ``[start, end)``; rates are ``Fraction``s; times on a file's
own presentation clock are seconds (``*_s``).
"""

from edidub_engine.media.atomic import AtomicOutput
from edidub_engine.media.audio import load_audio, load_audio_for_frames
from edidub_engine.media.decode import iter_frames, iter_pictures, read_frames, to_rgb
from edidub_engine.media.encode import OUTPUT_AUDIO_SAMPLE_RATE_HZ, ClipWriter, Codec
from edidub_engine.media.native import NativePicture, planar_format
from edidub_engine.media.probe import VideoInfo, probe_video
from edidub_engine.timebase import (
    frame_to_seconds,
    frame_to_timecode,
    is_drop_frame_rate,
    normalize_rate,
    seconds_to_frame,
    timecode_to_frame,
)

__all__ = [
    "AtomicOutput",
    "ClipWriter",
    "Codec",
    "NativePicture",
    "OUTPUT_AUDIO_SAMPLE_RATE_HZ",
    "VideoInfo",
    "frame_to_seconds",
    "frame_to_timecode",
    "is_drop_frame_rate",
    "iter_frames",
    "iter_pictures",
    "load_audio",
    "load_audio_for_frames",
    "normalize_rate",
    "planar_format",
    "probe_video",
    "read_frames",
    "seconds_to_frame",
    "timecode_to_frame",
    "to_rgb",
]
