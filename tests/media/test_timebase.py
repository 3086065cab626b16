from fractions import Fraction

import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.media import (
    frame_to_seconds,
    frame_to_timecode,
    is_drop_frame_rate,
    normalize_rate,
    seconds_to_frame,
    timecode_to_frame,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (Fraction(2997, 100), Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        ("23.98", Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (47.952, Fraction(48000, 1001)),
        (119.88, Fraction(120000, 1001)),
        ("30000/1001", Fraction(30000, 1001)),
        (25, Fraction(25)),
        (30, Fraction(30)),
        (Fraction(1350, 61), Fraction(1350, 61)),
    ],
)
def test_normalize_rate_snaps_only_ntsc(given, expected):
    rate = normalize_rate(given)
    assert rate == expected and isinstance(rate, Fraction)


@pytest.mark.parametrize("bad", [0, -25, "fast", float("nan")])
def test_normalize_rate_rejects_non_rates(bad):
    with pytest.raises(InvalidArgumentError):
        normalize_rate(bad)


def test_drop_frame_convention():
    assert is_drop_frame_rate(Fraction(30000, 1001)) and is_drop_frame_rate(59.94)
    assert not is_drop_frame_rate(24000 / 1001) and not is_drop_frame_rate(25) and not is_drop_frame_rate(30)


@pytest.mark.parametrize(
    ("frame", "rate", "drop", "tc"),
    [
        (107892, Fraction(30000, 1001), None, "01:00:00;00"),
        (1800, Fraction(30000, 1001), None, "00:01:00;02"),  # frames 00 and 01 are dropped at the minute
        (1800, Fraction(30000, 1001), False, "00:01:00:00"),
        (900000, 25, None, "10:00:00:00"),
        (86400, Fraction(24000, 1001), None, "01:00:00:00"),
        (31, 15, None, "00:00:02:01"),  # not an OTIO/SMPTE rate: counted at 15
    ],
)
def test_timecode_round_trip(frame, rate, drop, tc):
    assert frame_to_timecode(frame, rate, drop) == tc
    assert timecode_to_frame(tc, rate) == frame


def test_timecode_errors_name_the_problem():
    with pytest.raises(InvalidArgumentError, match="drop-frame"):
        frame_to_timecode(10, 25, drop_frame=True)
    with pytest.raises(InvalidArgumentError, match="drop-frame"):
        timecode_to_frame("01:00:00;00", 25)
    with pytest.raises(InvalidArgumentError, match="HH:MM:SS:FF"):
        timecode_to_frame("1 hour", 25)
    with pytest.raises(InvalidArgumentError, match="not valid"):
        timecode_to_frame("00:00:00:25", 25)


def test_seconds_and_frames():
    assert frame_to_seconds(30, Fraction(30000, 1001)) == Fraction(1001, 1000)
    assert seconds_to_frame(1.001, Fraction(30000, 1001)) == 30
    assert seconds_to_frame(Fraction(1, 50), 25) == 1  # halves round up
