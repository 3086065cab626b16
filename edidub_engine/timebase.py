"""Rational frame rates and timecode: the one home of EdiDub's time arithmetic.

Rates are :class:`fractions.Fraction` everywhere: a float like 23.976 is not the
NTSC rate 24000/1001, and the difference is a whole frame after 17 minutes.
Containers, NLEs and OTIO store rounded rates (``2997/100``, ``23.976``,
``23.976024627685547``), so :func:`normalize_rate` snaps anything within 0.05 %
of an NTSC rate onto the exact one, and :func:`exact_video_rate` also snaps to
the whole picture rates and refuses a rate no picture has (fcpx_xml's 29 for
29.97).  People type rates the same way (``--rate 29.97``, a shot list's
``"23.976"``): :func:`parse_rate` reads a typed rate by that same rule and says
once which exact rate a decimal became.  The media decoder, the OTIO adapters,
the shot requests and the Resolve and Premiere plugins all count frames through
here (light: no PyAV, no numpy).

Timecode arithmetic (drop-frame included) is OpenTimelineIO's ``opentime``; the
only hand-written path is non-drop timecode at rates SMPTE does not define
(12.5, 15, 119.88…), counted at the nearest whole rate as editors do.
"""

from __future__ import annotations

import logging
import math
import re
from fractions import Fraction
from numbers import Rational, Real
from typing import Any

from edidub_engine.errors import InvalidArgumentError

__all__ = [
    "RateLike",
    "VIDEO_RATES",
    "exact_video_rate",
    "normalize_rate",
    "parse_rate",
    "format_rate",
    "is_drop_frame_rate",
    "frame_to_timecode",
    "timecode_to_frame",
    "frame_to_seconds",
    "seconds_to_frame",
    "round_half_up",
]

RateLike = Fraction | int | float | str

# n * 1000/1001 for the nominal rates that have an NTSC ("pull-down") variant.
_NTSC_RATES = tuple(Fraction(n * 1000, 1001) for n in (24, 30, 48, 60, 96, 120, 240))
_NTSC_TOLERANCE = Fraction(5, 10000)  # 0.05 %
_DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
_TIMECODE_RE = re.compile(r"^(-?)(\d{1,2})[:;.](\d{2})[:;.](\d{2})[:;.,](\d{2,3})$")
_DECIMAL_RE = re.compile(r"\d+\.\d*|\.\d+")
_RATE_HINT = 'write a rate as "30000/1001", "25", [24000, 1001] or a decimal such as 29.97 (read as the NTSC rate 30000/1001)'
_log = logging.getLogger("edidub.timebase")
_said: set[str] = set()  # decimal spellings already reported as NTSC rates (say so once)


def round_half_up(value: Fraction) -> int:
    """Nearest integer, halves up — deterministic, unlike banker's ``round``."""
    return math.floor(value + Fraction(1, 2))


def _as_fraction(rate: RateLike) -> Fraction:
    if isinstance(rate, bool):
        raise InvalidArgumentError(f"frame rate {rate!r} is not a number", hint="pass a rate like Fraction(25) or '30000/1001'")
    if isinstance(rate, Rational):
        return Fraction(rate.numerator, rate.denominator)
    if isinstance(rate, str):
        try:
            return Fraction(rate.strip()).limit_denominator(1_000_000)
        except (ValueError, ZeroDivisionError):
            raise InvalidArgumentError(
                f"frame rate {rate!r} is not a number", hint="write rates as '25', '30000/1001' or '23.976'"
            ) from None
    if isinstance(rate, Real) and math.isfinite(float(rate)):
        return Fraction(float(rate)).limit_denominator(1_000_000)
    raise InvalidArgumentError(f"frame rate {rate!r} is not a number", hint="pass a rate like Fraction(25) or '30000/1001'")


def normalize_rate(rate: RateLike) -> Fraction:
    """The exact rate a stream means: within 0.05 % of an NTSC rate becomes it.

    ``2997/100`` → ``30000/1001``, ``23.976`` → ``24000/1001``; 25, 30 and every
    other rate are returned unchanged (as a Fraction).
    """
    value = _as_fraction(rate)
    if value <= 0:
        raise InvalidArgumentError(f"frame rate {value} is not positive", hint="a frame rate must be above 0")
    for ntsc in _NTSC_RATES:
        if abs(value - ntsc) <= ntsc * _NTSC_TOLERANCE:
            return ntsc
    return value


def parse_rate(value: Any, *, where: str) -> Fraction:
    """A rate as a person or a file types it: ``"30000/1001"``, ``[30000, 1001]``, ``25``, a Fraction, or a decimal.

    Editors write the NTSC rates as 29.97, 23.976 or 59.94, which are not those rates
    (2997/100 drifts a frame from 30000/1001 in 9 minutes): a decimal within 0.05 % of an
    NTSC rate (:func:`normalize_rate`'s rule) is that NTSC rate, and the first time a
    spelling is read so, a notice on the ``edidub.timebase`` log says which rate it
    became.  Any other decimal is its exact value (``12.5`` is 25/2).  A rational is
    taken as written.  ``where`` names the field in the error.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, Rational):
            rate = Fraction(value.numerator, value.denominator)
        elif isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            rate = Fraction(value[0], value[1])
        elif isinstance(value, str) and "." not in value:
            rate = Fraction(value)
        elif isinstance(value, (str, float)):
            rate = _decimal_rate(value.strip() if isinstance(value, str) else repr(value), where)
        else:
            raise TypeError
    except (TypeError, ValueError, ZeroDivisionError):
        raise InvalidArgumentError(f"{where}: rate {value!r} is not a frame rate", hint=_RATE_HINT) from None
    if rate <= 0:
        raise InvalidArgumentError(f"{where}: rate must be positive, got {value!r}", hint=_RATE_HINT)
    return rate


def _decimal_rate(text: str, where: str) -> Fraction:
    if not _DECIMAL_RE.fullmatch(text):
        raise ValueError(text)
    exact = Fraction(text)
    if exact <= 0:
        return exact
    rate = normalize_rate(exact)
    if rate != exact and text not in _said:
        _said.add(text)
        _log.warning("%s: frame rate %s read as the NTSC rate %s (%.5f fps)", where, text, format_rate(rate), float(rate))
    return rate


def format_rate(rate: Fraction) -> str:
    """``"30000/1001"``, ``"25/1"``: how a rate is written on the wire and in files."""
    return f"{rate.numerator}/{rate.denominator}"


# Frame rates seen in picture editorial: the NTSC ones and these whole (and 12.5) rates.
_INTEGER_RATES = (1, 2, 5, 6, 8, 10, 12, 15, 16, 18, 20, 24, 25, 30, 48, 50, 60, 72, 75, 90, 96, 100, 120, 144, 150, 200, 240, 300)
VIDEO_RATES: tuple[Fraction, ...] = tuple(sorted({*_NTSC_RATES, *(Fraction(n) for n in _INTEGER_RATES), Fraction(25, 2)}))


def exact_video_rate(rate: RateLike, *, where: str = "", video: bool = True) -> Fraction:
    """The exact picture rate a stored one means: ``23.976``, ``23.98`` → ``24000/1001``, ``24.0`` → ``24``.

    Within 0.05 % (the tolerance of :func:`normalize_rate`) of a rate in :data:`VIDEO_RATES` it
    becomes that rate.  Any other rate is an :class:`InvalidArgumentError` naming ``where`` when
    ``video`` (``29.0``, which the fcpx_xml adapter produces for 29.97 projects, must not pass as
    a picture rate); with ``video=False`` (audio clips) it is kept as a rational.
    """
    value = _as_fraction(rate)
    if value <= 0:
        raise InvalidArgumentError(f"{where}: rate {rate!r} is not positive")
    for known in VIDEO_RATES:
        if abs(value - known) <= known * _NTSC_TOLERANCE:
            return known
    if video:
        raise InvalidArgumentError(
            f"{where}: frame rate {float(value):g} is not a picture frame rate",
            hint="the file (or the OTIO adapter that read it) stores a wrong rate, e.g. fcpx_xml reads 29.97 as 29; "
            "re-export as OTIO or FCP7 XML",
        )
    if abs(value - round(value)) < Fraction(1, 10**6):
        return Fraction(round(value))
    return value.limit_denominator(1001)


def is_drop_frame_rate(rate: RateLike) -> bool:
    """Whether timecode at this rate is drop-frame by convention (29.97 and 59.94)."""
    return normalize_rate(rate) in _DROP_FRAME_RATES


def _nominal_fps(rate: Fraction) -> int:
    return max(1, math.ceil(rate - Fraction(1, 1000)))


def _opentime():
    """OpenTimelineIO's time module, imported at first use: reading a rate (the daemon client) needs no OTIO."""
    import opentimelineio.opentime as otio_time

    return otio_time


def _otio_rate(rate: Fraction) -> float | None:
    """The float OTIO wants, or None where SMPTE timecode does not define the rate."""
    value = float(rate)
    return value if _opentime().RationalTime.is_valid_timecode_rate(value) else None


def frame_to_timecode(frame: int, rate: RateLike, drop_frame: bool | None = None) -> str:
    """SMPTE timecode of a frame count from 00:00:00:00 (``;`` before frames when drop-frame).

    ``drop_frame=None`` follows the rate's convention (:func:`is_drop_frame_rate`).
    """
    rate_fr = normalize_rate(rate)
    frame = int(frame)
    if frame < 0:
        raise InvalidArgumentError(f"frame {frame} is negative; timecode starts at frame 0")
    if drop_frame is None:
        drop_frame = is_drop_frame_rate(rate_fr)
    if drop_frame and not is_drop_frame_rate(rate_fr):
        raise InvalidArgumentError(
            f"drop-frame timecode does not exist at {rate_fr} fps",
            hint="drop-frame is only defined for 30000/1001 and 60000/1001; use non-drop",
        )
    otio_rate = _otio_rate(rate_fr)
    if otio_rate is not None:
        otio_time = _opentime()
        return otio_time.to_timecode(otio_time.RationalTime(frame, otio_rate), otio_rate, drop_frame)
    fps = _nominal_fps(rate_fr)
    frames = frame % fps
    seconds_total = frame // fps
    return f"{seconds_total // 3600:02d}:{seconds_total // 60 % 60:02d}:{seconds_total % 60:02d}:{frames:02d}"


def timecode_to_frame(tc: str, rate: RateLike, drop_frame: bool | None = None) -> int:
    """Frame count from 00:00:00:00 of a timecode; ``;`` (or ``.``) marks drop-frame, unless ``drop_frame``
    says it (an NLE that states drop frame in a setting and writes ``:``)."""
    rate_fr = normalize_rate(rate)
    text = str(tc).strip()
    match = _TIMECODE_RE.match(text)
    if not match or match.group(1):
        raise InvalidArgumentError(f"timecode {tc!r} is not HH:MM:SS:FF", hint="write it like 01:00:00:00 (or 01:00:00;00 drop-frame)")
    hours, minutes, seconds, frames = (int(g) for g in match.groups()[1:])
    drop = any(sep in text for sep in ";.,") if drop_frame is None else bool(drop_frame)
    fps = _nominal_fps(rate_fr)
    if minutes > 59 or seconds > 59 or frames >= fps:
        raise InvalidArgumentError(f"timecode {tc!r} is not valid at {rate_fr} fps", hint=f"frames run 00–{fps - 1:02d}, minutes and seconds 00–59")
    if drop and not is_drop_frame_rate(rate_fr):
        raise InvalidArgumentError(
            f"timecode {tc!r} is drop-frame but the rate is {rate_fr} fps",
            hint="drop-frame is only defined for 30000/1001 and 60000/1001; write it with ':'",
        )
    otio_rate = _otio_rate(rate_fr)
    if otio_rate is not None:
        normal = f"{hours:02d}:{minutes:02d}:{seconds:02d}{';' if drop else ':'}{frames:02d}"
        try:
            return round(_opentime().from_timecode(normal, otio_rate).value)
        except ValueError as exc:  # e.g. a frame number that drop-frame skips
            raise InvalidArgumentError(f"timecode {tc!r} is not valid at {rate_fr} fps: {exc}") from None
    return ((hours * 60 + minutes) * 60 + seconds) * fps + frames


def frame_to_seconds(frame: int, rate: RateLike) -> Fraction:
    """Exact time of a frame's start (``frame / rate``); ``float()`` it for display."""
    return Fraction(int(frame)) / normalize_rate(rate)


def seconds_to_frame(seconds: float | Fraction, rate: RateLike) -> int:
    """The frame nearest to a time (halves round up): ``round(seconds * rate)``."""
    value = Fraction(seconds) if not isinstance(seconds, float) else Fraction(seconds).limit_denominator(10**9)
    return round_half_up(value * normalize_rate(rate))
