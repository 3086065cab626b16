"""Exact time for OTIO: float rates → rationals, RationalTime → Fraction seconds → integer frames.

OTIO stores rates as doubles (``23.976``, ``23.976024627685547``, ``29.97``).  Every
computation here goes through :func:`exact_rate` first, so frames are counted on the
true NTSC grid (``24000/1001``), and only the final frame number is rounded.
"""

from __future__ import annotations

from fractions import Fraction

import opentimelineio as otio

from edidub_engine.errors import InvalidArgumentError

# Frame rates seen in picture editorial.  NTSC rates are n*1000/1001.
_NTSC_BASES = (24, 30, 48, 60, 120, 240)
_INTEGER_RATES = (1, 2, 5, 6, 8, 10, 12, 15, 16, 18, 20, 24, 25, 30, 48, 50, 60, 72, 75, 90, 96, 100, 120, 144, 150, 200, 240, 300)
_VIDEO_RATES: tuple[Fraction, ...] = tuple(
    sorted({Fraction(n * 1000, 1001) for n in _NTSC_BASES} | {Fraction(n) for n in _INTEGER_RATES} | {Fraction(25, 2)})
)


def exact_rate(rate: float | int | Fraction, *, where: str = "", video: bool = True) -> Fraction:
    """The exact rational for an OTIO rate.

    ``23.976``, ``23.976024627685547``, ``23.98`` → ``24000/1001``; ``29.97`` → ``30000/1001``;
    ``24.0`` → ``24``.  With ``video=True`` a rate that is no known picture rate (``29.0``,
    which the fcpx_xml adapter produces for 29.97 projects) is an :class:`InvalidArgumentError`;
    with ``video=False`` (audio clips, sample rates) any positive rate is kept as a rational.
    """
    if isinstance(rate, Fraction):
        value = rate
    else:
        try:
            value = Fraction(float(rate))
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgumentError(f"{where}: rate {rate!r} is not a number") from None
    if value <= 0:
        raise InvalidArgumentError(f"{where}: rate {rate!r} is not positive")
    for known in _VIDEO_RATES:
        # 23.976 vs 24000/1001 differ by 1e-6 relative; 23.98 by 1.7e-4; 24 vs 23.976 by 1e-3.
        if abs(value - known) <= known * Fraction(3, 10000):
            return known
    if video:
        raise InvalidArgumentError(
            f"{where}: frame rate {float(value):g} is not a picture frame rate",
            hint="the file (or the OTIO adapter that read it) stores a wrong rate, e.g. fcpx_xml reads 29.97 as 29; "
            "re-export as OTIO or FCP7 XML",
        )
    if value.denominator == 1 or abs(value - round(value)) < Fraction(1, 10**6):
        return Fraction(round(value))
    return value.limit_denominator(1001)


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
