"""Speech units per video frame: two units per frame at any rational frame rate.

The LSD model takes exactly two units per video frame (50 Hz audio units, 25 fps
video in the paper). At 25 fps that is the unit stream as is. For other rates
each frame's two slots are resampled by time with one rule: slot ``s`` (0, 1)
of frame ``f`` stands for the instant at its centre,
``(f + (2 s + 1) / 4) / rate`` seconds, and takes the unit whose 20 ms interval
contains that instant (nearest unit centre; exact integer arithmetic, so no
float drift over long shots). At 25 fps this gives units ``2f`` and ``2f + 1``
exactly; at 30000/1001 some units are skipped, at 24000/1001 some repeat.

Where there is no audio for a slot — before the start of the audio, or after
the dub line ends inside the shot — the slot holds the null unit (index =
number of clusters), the symbol the model also sees for classifier-free
guidance. The returned :class:`FrameUnits` says how many shot frames were
padded and how much dub audio ran past the shot end (cut), never silently.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from edidub_engine.errors import InvalidArgumentError

from .codebook import Codebook
from .frontends import FRAME_RATE_HZ, SAMPLE_RATE_HZ, SpeechFrontend

__all__ = [
    "DEFAULT_CONTEXT_FRAMES",
    "UNITS_PER_FRAME",
    "FrameUnits",
    "UnitEncoder",
    "align_units",
    "shot_units",
    "units_for_shot",
]

UNITS_PER_FRAME = 2
# Frames of audio context kept on each side of a shot: 8 frames (320 ms at 25 fps) covers
# co-articulation (lips move up to ~200 ms ahead of the sound) and the audio convolution's reach.
DEFAULT_CONTEXT_FRAMES = 8


def _fraction(value: float | int | Fraction, what: str) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidArgumentError(f"{what}={value} is not a finite number", hint="pass seconds as a number")
    return Fraction(value).limit_denominator(10**9)


def _rate(rate: Fraction | int | str) -> Fraction:
    if isinstance(rate, float):
        raise InvalidArgumentError(
            f"frame rate {rate} given as a float", hint="pass a fractions.Fraction such as Fraction(24000, 1001), never 23.976"
        )
    value = Fraction(rate)
    if value <= 0:
        raise InvalidArgumentError(f"frame rate {rate} is not positive", hint="pass e.g. Fraction(25) or Fraction(30000, 1001)")
    return value


class UnitEncoder:
    """A frontend and a codebook checked to belong together: audio → units at 50 Hz."""

    def __init__(self, frontend: SpeechFrontend, codebook: Codebook):
        codebook.check_frontend(frontend)
        self.frontend = frontend
        self.codebook = codebook

    @property
    def null_unit(self) -> int:
        return self.codebook.null_unit

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """``[len(audio) // 320]`` int64 units for 16 kHz mono ``audio`` (unit ``k`` ↔ ``[k/50, (k+1)/50)`` s)."""
        return self.codebook.assign(self.frontend.features(audio))


def align_units(
    units: np.ndarray,
    *,
    rate: Fraction,
    num_frames: int,
    first_frame_s: Fraction | float = Fraction(0),
    valid_until_s: Fraction | float | None = None,
    null_unit: int,
) -> np.ndarray:
    """``[num_frames x 2]`` int64 units for frames starting ``first_frame_s`` into a 50 Hz unit stream.

    ``units[k]`` covers ``[k/50, (k+1)/50)`` s on the stream's clock; frame
    ``i`` starts at ``first_frame_s + i / rate`` on that clock. Slots whose
    centre is before 0, past the stream, or at/after ``valid_until_s`` get
    ``null_unit``.
    """
    rate = _rate(rate)
    if num_frames < 0:
        raise InvalidArgumentError(f"num_frames={num_frames} is negative", hint="pass a frame count >= 0")
    units = np.asarray(units, dtype=np.int64)
    start = _fraction(first_frame_s, "first_frame_s")
    p, q = rate.numerator, rate.denominator
    a, b = start.numerator, start.denominator
    denom = 4 * p * b  # slot centre = num / denom seconds
    hz = int(FRAME_RATE_HZ)
    until = None if valid_until_s is None else _fraction(valid_until_s, "valid_until_s")
    out = np.full((num_frames, UNITS_PER_FRAME), null_unit, dtype=np.int64)
    for i in range(num_frames):
        for s in range(UNITS_PER_FRAME):
            num = 4 * p * a + (4 * i + 2 * s + 1) * q * b
            if num < 0:
                continue
            if until is not None and num * until.denominator >= until.numerator * denom:
                continue
            k = (hz * num) // denom
            if k < len(units):
                out[i, s] = units[k]
    return out


@dataclass(frozen=True, eq=False)
class FrameUnits:
    """Units for a shot ``[start_frame, end_frame)`` plus ``context_frames`` on each side.

    ``units``: ``[(end_frame - start_frame + 2 * context_frames) x 2]`` int64;
    row 0 is frame ``start_frame - context_frames`` (may be negative: context
    is audio time, not picture). ``padded_frames``: shot frames that hold
    null units because the dub ended inside the shot. ``cut_s``: seconds of
    dub past the shot's end, which the shot does not show (its start is still
    visible to the after-context).
    """

    units: np.ndarray
    rate: Fraction
    start_frame: int
    end_frame: int
    context_frames: int
    null_unit: int
    padded_frames: int
    cut_s: Fraction

    @property
    def first_frame(self) -> int:
        return self.start_frame - self.context_frames

    @property
    def shot(self) -> np.ndarray:
        """``[frames x 2]`` units of the shot itself, without context."""
        return self.units[self.context_frames : self.context_frames + self.end_frame - self.start_frame]

    @property
    def cut_frames(self) -> int:
        """Whole frames' worth of dub cut at the end (rounded up)."""
        return math.ceil(self.cut_s * self.rate)

    def window(self, start_frame: int, end_frame: int) -> np.ndarray:
        """Units of absolute frames ``[start_frame, end_frame)``; must lie inside the context range."""
        lo, hi = start_frame - self.first_frame, end_frame - self.first_frame
        if not (0 <= lo <= hi <= len(self.units)):
            raise InvalidArgumentError(
                f"frames [{start_frame}, {end_frame}) are outside the units held for frames "
                f"[{self.first_frame}, {self.first_frame + len(self.units)})",
                hint="ask for a window inside the shot and its context",
            )
        return self.units[lo:hi]


def units_for_shot(
    encoder: UnitEncoder,
    audio: np.ndarray,
    *,
    rate: Fraction,
    start_frame: int,
    end_frame: int,
    shot_start_s: Fraction | float = Fraction(0),
    dub_end_s: Fraction | float | None = None,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
) -> FrameUnits:
    """Units for a shot from audio already in memory (the pipeline's form: arrays, no paths).

    ``audio``: 16 kHz mono, sample 0 at 0 s on the audio clock; ``start_frame``
    begins at ``shot_start_s`` on that clock. ``dub_end_s`` is where the dub
    line ends (default: the end of ``audio``). If it ends inside the shot, the
    rest of the shot and the after-context are null (padding); if it runs past
    the shot, the excess is reported as ``cut_s`` and the after-context still
    hears it. Before-context hears whatever ``audio`` holds before the shot.
    """
    rate = _rate(rate)
    if end_frame <= start_frame:
        raise InvalidArgumentError(f"shot range [{start_frame}, {end_frame}) is empty", hint="end_frame is exclusive and must exceed start_frame")
    if context_frames < 0:
        raise InvalidArgumentError(f"context_frames={context_frames} is negative", hint="pass 0 or more")
    frames = end_frame - start_frame
    shot_start = _fraction(shot_start_s, "shot_start_s")
    audio_end = Fraction(len(audio), SAMPLE_RATE_HZ)
    dub_end = audio_end if dub_end_s is None else _fraction(dub_end_s, "dub_end_s")
    shot_end = shot_start + Fraction(frames) / rate
    stream = encoder.encode(audio)
    aligned = align_units(
        stream,
        rate=rate,
        num_frames=frames + 2 * context_frames,
        first_frame_s=shot_start - Fraction(context_frames) / rate,
        valid_until_s=dub_end if dub_end < shot_end else None,
        null_unit=encoder.null_unit,
    )
    # A shot frame is padding when its first slot's centre, (i + 1/4) / rate after the shot start,
    # is at or past the dub's end (then its second slot is too); a half-covered frame is not.
    spoken = (dub_end - shot_start) * rate - Fraction(1, 4)
    padded = frames - min(frames, max(0, math.ceil(spoken)))
    return FrameUnits(
        units=aligned,
        rate=rate,
        start_frame=int(start_frame),
        end_frame=int(end_frame),
        context_frames=int(context_frames),
        null_unit=encoder.null_unit,
        padded_frames=padded,
        cut_s=max(Fraction(0), dub_end - shot_end),
    )


def shot_units(
    encoder: UnitEncoder,
    path: str | os.PathLike,
    *,
    rate: Fraction,
    start_frame: int,
    end_frame: int,
    audio_start_s: Fraction | float = Fraction(0),
    audio_duration_s: Fraction | float | None = None,
    context_frames: int = DEFAULT_CONTEXT_FRAMES,
) -> FrameUnits:
    """Units for a shot whose frame ``start_frame`` lines up with ``audio_start_s`` in the file at ``path``.

    The dub line is ``[audio_start_s, audio_start_s + audio_duration_s)`` of
    the file; None runs to the end of the file (which is then read to its end
    to learn where that is — pass the duration for long files). Context
    before the shot is read from the file (null before 0 s); past the end of
    the file the media loader gives silence.
    """
    from edidub_engine.media import load_audio

    rate = _rate(rate)
    start = _fraction(audio_start_s, "audio_start_s")
    if start < 0:
        raise InvalidArgumentError(f"audio_start_s={float(start)} is negative", hint="times in the audio file start at 0 s")
    frames = end_frame - start_frame
    if frames <= 0:
        raise InvalidArgumentError(f"shot range [{start_frame}, {end_frame}) is empty", hint="end_frame is exclusive and must exceed start_frame")
    read_start = max(Fraction(0), start - Fraction(context_frames) / rate)
    # One 20 ms unit past the after-context, so its last slot never falls off the stream.
    read_end = start + Fraction(frames + context_frames) / rate + 1 / FRAME_RATE_HZ
    if audio_duration_s is None:
        audio = load_audio(path, start_s=read_start, duration_s=None, sample_rate_hz=SAMPLE_RATE_HZ)
        dub_end = Fraction(len(audio), SAMPLE_RATE_HZ)  # the end of the file, on the array's clock
        audio = audio[: math.ceil((read_end - read_start) * SAMPLE_RATE_HZ)]
    else:
        duration = _fraction(audio_duration_s, "audio_duration_s")
        if duration < 0:
            raise InvalidArgumentError(f"audio_duration_s={float(duration)} is negative", hint="pass a length of 0 s or more")
        dub_end = start + duration - read_start
        audio = load_audio(path, start_s=read_start, duration_s=read_end - read_start, sample_rate_hz=SAMPLE_RATE_HZ)
    return units_for_shot(
        encoder,
        audio,
        rate=rate,
        start_frame=start_frame,
        end_frame=end_frame,
        shot_start_s=start - read_start,
        dub_end_s=dub_end,
        context_frames=context_frames,
    )
