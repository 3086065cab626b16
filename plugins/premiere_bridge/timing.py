"""Premiere time → frames and rational rates.

Premiere counts time in ticks: 254016000000 per second (divisible by every common frame
rate).  A sequence's timebase (``Sequence.getTimebase()``) is its ticks per frame as a
string: 10594584000 for 23.976, 8475667200 for 29.97, 10584000000 for 24, 10160640000 for 25.
So the rate is ``254016000000 / timebase`` exactly (24000/1001, 30000/1001…) and a frame
number is ``round(ticks / timebase)`` — all on integers and Fractions, never floats.
"""

from __future__ import annotations

from fractions import Fraction

from edidub_engine.errors import InvalidArgumentError

TICKS_PER_SECOND = 254_016_000_000

__all__ = ["TICKS_PER_SECOND", "frames_to_ticks", "parse_ticks", "rate_from_timebase", "ticks_to_frames", "timebase_from_rate"]


def parse_ticks(value, *, where: str) -> int:
    """Ticks as Premiere gives them: ``TickTime.ticks`` is a string of digits (may be negative); ints are accepted too."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{where}: {value!r} is not a tick count")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        body = text[1:] if text[:1] == "-" else text
        if body.isdigit() and len(body) <= 30:
            return int(text)
    raise InvalidArgumentError(
        f"{where}: {value!r} is not a tick count",
        hint="send TickTime.ticks (a string of digits, 254016000000 per second)",
    )


def rate_from_timebase(timebase, *, where: str = "sequence") -> Fraction:
    """``Sequence.getTimebase()`` (ticks per frame) → exact frame rate."""
    ticks = parse_ticks(timebase, where=f"{where} timebase")
    if ticks <= 0:
        raise InvalidArgumentError(f"{where}: timebase {timebase!r} must be a positive number of ticks per frame")
    return Fraction(TICKS_PER_SECOND, ticks)


def timebase_from_rate(rate: Fraction) -> int:
    value = Fraction(TICKS_PER_SECOND) / Fraction(rate)
    if value.denominator != 1:
        raise InvalidArgumentError(f"frame rate {rate} has no whole number of ticks per frame")
    return int(value)


def ticks_to_frames(ticks: int, rate: Fraction) -> Fraction:
    """Exact (possibly fractional) frames at ``rate``."""
    return Fraction(ticks) * Fraction(rate) / TICKS_PER_SECOND


def frames_to_ticks(frames: int | Fraction, rate: Fraction) -> int:
    value = Fraction(frames) * TICKS_PER_SECOND / Fraction(rate)
    return int(value.__floor__() if value.denominator != 1 else value)
