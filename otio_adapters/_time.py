"""Exact time for OTIO: float rates → rationals, RationalTime → Fraction seconds → integer frames.

OTIO stores rates as doubles (``23.976``, ``23.976024627685547``, ``29.97``).  Every
computation here goes through :func:`exact_rate` first, so frames are counted on the
true NTSC grid (``24000/1001``), and only the final frame number is rounded.
"""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.timebase import exact_video_rate


def exact_rate(rate: float | int | Fraction, *, where: str = "", video: bool = True) -> Fraction:
    """The exact rational for an OTIO rate (:func:`edidub_engine.timebase.exact_video_rate`: one rule everywhere)."""
    if not isinstance(rate, (Fraction, int)):
        try:
            rate = float(rate)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgumentError(f"{where}: rate {rate!r} is not a number") from None
    return exact_video_rate(rate, where=where, video=video)


def format_rate(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def seconds(rt: otio.opentime.RationalTime, *, where: str = "", video: bool = False) -> Fraction:
    """``rt`` as exact seconds: value (to 1e-6) / exact rate."""
    value = Fraction(rt.value).limit_denominator(10**6)
    return value / exact_rate(rt.rate, where=where, video=video)


def frames(rt: otio.opentime.RationalTime, rate: Fraction, *, where: str = "") -> Fraction:
    """``rt`` counted in frames of ``rate`` (exact, possibly fractional)."""
    return seconds(rt, where=where) * rate


def rt(frame: int | Fraction, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(frame), float(rate))


def tr(start: int | Fraction, duration: int | Fraction, rate: Fraction) -> otio.opentime.TimeRange:
    return otio.opentime.TimeRange(rt(start, rate), rt(duration, rate))


def round_frame(value: Fraction) -> int:
    """Nearest frame; halves go up (``floor(x + 1/2)``) so the result never depends on parity."""
    return int((value + Fraction(1, 2)).__floor__())
