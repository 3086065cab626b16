"""What a clip is: its frame grid, clocks and colour description (plain data, no I/O).

:mod:`.probe` fills it from a video file's headers and packets, :mod:`.sequence` from an
image sequence's files; everything downstream reads only this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from edidub_engine.timebase import frame_to_timecode, round_half_up, timecode_to_frame

__all__ = ["ColorTags", "SWS_MATRIX", "VideoInfo", "pixel_bit_depth"]


# FFmpeg's codes (AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic, AVColorRange): 2 / 0 = unspecified.
_MATRIX_NAMES = {0: "rgb", 1: "bt709", 2: "unspecified", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
_PRIMARIES_NAMES = {1: "bt709", 2: "unspecified", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 11: "dci-p3", 12: "display-p3"}
_TRANSFER_NAMES = {1: "bt709", 2: "unspecified", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 8: "linear", 13: "srgb", 14: "bt2020-10",
                   15: "bt2020-12", 16: "pq", 18: "hlg"}
_RANGE_NAMES = {0: "unspecified", 1: "limited", 2: "full"}
# swscale's matrix for a matrix code (decode and encode convert with the same one)
SWS_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


@dataclass(frozen=True)
class ColorTags:
    """A stream's colour description as FFmpeg codes, carried from source to output unchanged.

    ``matrix`` (YUV↔RGB), ``primaries``, ``transfer`` (SDR, PQ 16, HLG 18) and ``range``
    (1 limited, 2 full).  Untagged stays untagged in the output, so an NLE guesses the same for
    the dub as for its original; the conversions use :meth:`conversion_matrix` and
    :meth:`full_range`, the stated defaults for an untagged stream: BT.709 above 576 lines or
    1024 columns, BT.601 below, limited range.
    """

    matrix: int = 2
    primaries: int = 2
    transfer: int = 2
    range: int = 0

    def conversion_matrix(self, width: int, height: int) -> str:
        """swscale's name of the YUV↔RGB matrix to convert with."""
        if self.matrix in SWS_MATRIX:
            return SWS_MATRIX[self.matrix]
        return "ITU709" if (height > 576 or width > 1024) else "ITU601"

    @property
    def full_range(self) -> bool:
        return self.range == 2

    def describe(self) -> str:
        """``bt709/bt709/bt709, limited range`` (matrix/primaries/transfer)."""
        names = (_MATRIX_NAMES.get(self.matrix, str(self.matrix)), _PRIMARIES_NAMES.get(self.primaries, str(self.primaries)),
                 _TRANSFER_NAMES.get(self.transfer, str(self.transfer)))
        text = "untagged" if set(names) == {"unspecified"} else "/".join(names)
        return f"{text}, {_RANGE_NAMES.get(self.range, str(self.range))} range"


def pixel_bit_depth(pix_fmt: str | None) -> int | None:
    """Bits per sample of a pixel format (``yuv422p10le`` → 10), or None when unknown."""
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components) if pix_fmt else None
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class VideoInfo:
    """A video file's frame grid and clocks; frames are ``[0, frame_count)`` at ``rate``."""

    path: Path
    width: int
    height: int
    rate: Fraction
    frame_count: int
    start_timecode: str
    drop_frame: bool
    codec: str
    variable_frame_rate: bool
    video_start_s: float
    has_audio: bool
    audio_sample_rate_hz: int | None
    audio_start_s: float | None
    duration_s: float
    pix_fmt: str | None = None
    codec_profile: str | None = None
    audio_codec: str | None = None
    audio_channels: int | None = None
    color: ColorTags = field(default_factory=ColorTags)
    # Exact clock of frame 0, for decode's pts → grid mapping (not part of the display).
    time_base: Fraction = field(default=Fraction(1), repr=False)
    start_pts: int = field(default=0, repr=False)
    # An EXR/DPX plate's files (media.sequence); None for a video file.
    sequence: Any = field(default=None, repr=False)

    def timecode_at(self, frame: int) -> str:
        """Timecode of a grid frame (the start timecode plus ``frame``)."""
        start = timecode_to_frame(self.start_timecode, self.rate)
        return frame_to_timecode(start + int(frame), self.rate, self.drop_frame)

    @property
    def video_start(self) -> Fraction:
        """Exact ``video_start_s``."""
        return self.start_pts * self.time_base

    def slot_of_pts(self, pts: int) -> int:
        """The grid frame nearest to a video pts (halves round up)."""
        return round_half_up((pts - self.start_pts) * self.time_base * self.rate)
