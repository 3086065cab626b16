"""Frame alignment (two units per frame at any rational rate), null padding, cutting, context; speech vs silence."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.audio import MelFrontend, UnitEncoder, align_units, frame_count, shot_units, units_for_shot
from edidub_engine.errors import InvalidArgumentError
from edidub_engine.media import load_audio

RATES = [Fraction(25), Fraction(24000, 1001), Fraction(30000, 1001), Fraction(30), Fraction(50), Fraction(24)]


@pytest.fixture(scope="module")
def mel_encoder(mel_codebook):
    return UnitEncoder(MelFrontend(), mel_codebook)


def test_25_fps_is_the_stream_itself():
    stream = np.arange(100)
    out = align_units(stream, rate=Fraction(25), num_frames=50, null_unit=-1)
    assert np.array_equal(out.ravel(), stream)


@pytest.mark.parametrize("rate", RATES, ids=str)
def test_slots_take_the_unit_under_their_centre(rate):
    stream = np.arange(1000)
    frames = int(15 * rate)  # 15 s: long enough for float drift to show if there were any
    out = align_units(stream, rate=rate, num_frames=frames, first_frame_s=Fraction(1, 3), null_unit=-1)
    centres = [Fraction(1, 3) + (f + Fraction(2 * s + 1, 4)) / rate for f in range(frames) for s in (0, 1)]
    assert out.shape == (frames, 2)
    assert out.ravel().tolist() == [math.floor(c * 50) for c in centres]
    assert np.all(np.diff(out.ravel()) >= 0)  # time never runs backwards
    # Faster than 25 fps skips units, slower repeats them; never more than one unit between slots.
    assert np.diff(out.ravel()).max() <= 2 if rate < 25 else np.diff(out.ravel()).max() <= 1


def test_slots_without_audio_are_null():
    stream = np.arange(10)
    out = align_units(stream, rate=Fraction(25), num_frames=8, first_frame_s=Fraction(-2, 25), valid_until_s=Fraction(5, 50), null_unit=99)
    assert out.tolist() == [[99, 99], [99, 99], [0, 1], [2, 3], [4, 99], [99, 99], [99, 99], [99, 99]]


def test_float_rates_are_refused():
    with pytest.raises(InvalidArgumentError, match="Fraction"):
        align_units(np.arange(4), rate=23.976, num_frames=1, null_unit=0)


def test_mel_shot_units_match_the_stream_exactly_at_25_fps(mel_encoder, jfk):
    # Log-mel frames depend only on their own 25 ms window, so the shot's units equal the file's units.
    stream = mel_encoder.encode(load_audio(jfk))
    result = shot_units(mel_encoder, jfk, rate=Fraction(25), start_frame=100, end_frame=200, audio_start_s=2, audio_duration_s=4, context_frames=8)
    assert result.first_frame == 92 and result.units.shape == (116, 2)
    assert np.array_equal(result.units.ravel(), stream[100 - 16 : 300 + 16])
    assert np.array_equal(result.window(100, 124), result.shot[:24])
    with pytest.raises(InvalidArgumentError):
        result.window(80, 100)


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(24000, 1001), Fraction(30000, 1001)], ids=str)
def test_short_dub_is_padded_with_null_and_says_how_many_frames(mel_encoder, jfk, rate):
    frames = 100
    result = shot_units(mel_encoder, jfk, rate=rate, start_frame=0, end_frame=frames, audio_start_s=1, audio_duration_s=2)
    spoken = math.ceil(2 * rate - Fraction(1, 4))  # frames whose first slot is before the dub's end
    assert result.padded_frames == frames - spoken
    assert np.all(result.shot[spoken:] == mel_encoder.null_unit)
    assert np.all(result.units[result.context_frames + frames :] == mel_encoder.null_unit)  # after-context too
    assert not np.any(result.shot[: spoken - 1] == mel_encoder.null_unit)
    assert result.cut_s == 0


def test_long_dub_is_cut_and_the_after_context_still_hears_it(mel_encoder, jfk):
    result = shot_units(mel_encoder, jfk, rate=Fraction(25), start_frame=0, end_frame=50, audio_start_s=1, audio_duration_s=5)
    assert result.padded_frames == 0
    assert result.cut_s == 3 and result.cut_frames == 75
    assert not np.any(result.units == mel_encoder.null_unit)


def test_whole_file_dub_and_context_before_the_start_of_audio(mel_encoder, jfk):
    result = shot_units(mel_encoder, jfk, rate=Fraction(25), start_frame=0, end_frame=300, audio_duration_s=None, context_frames=8)
    # The file is 11.0 s; the 12 s shot runs past it, so the dub ends inside the shot.
    assert result.cut_s == 0
    assert np.all(result.units[:8] == mel_encoder.null_unit)  # no audio before 0 s
    assert result.padded_frames == 300 - math.ceil(Fraction(len(load_audio(jfk)), 16000) * 25 - Fraction(1, 4)) == 25


def test_arrays_in_arrays_out(mel_encoder):
    audio = np.zeros(16000, np.float32)
    result = units_for_shot(mel_encoder, audio, rate=Fraction(25), start_frame=10, end_frame=35, shot_start_s=Fraction(1, 2), context_frames=2)
    assert result.units.shape == (29, 2)
    assert result.padded_frames == 12  # 0.5 s of audio left = 12.5 frames: frames 10..22 hear it, 23..34 are null
    assert frame_count(len(audio)) == 50


def test_speech_then_silence_collapses_to_few_units(mel_encoder, jfk):
    """Measured (mel frontend, 32 clusters fitted on the shared dub speech, seed 0): JFK's first 4 s
    use 8 distinct units; 2.8 s of -60 dBFS white noise after it (room tone of a clean recording)
    uses 2, the most common on 98 % of frames. The bound allows 3 and 85 %: silence carries no
    articulation, so the model must see a (near) constant symbol there, while 140 frames of random
    units from 32 clusters would show about 32 distinct values."""
    speech = load_audio(jfk, duration_s=4)
    silence = 1e-3 * np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32)
    units = mel_encoder.encode(np.concatenate([speech, silence]))
    over_speech, over_silence = units[:200], units[210:]  # skip 10 units where windows straddle the join
    distinct_silence = len(set(over_silence.tolist()))
    dominant_share = np.bincount(over_silence).max() / len(over_silence)
    assert distinct_silence <= 3
    assert dominant_share >= 0.85
    assert len(set(over_speech.tolist())) >= 2 * distinct_silence
    # Digital silence (exact zeros, as the media loader pads) is a single unit.
    assert len(set(mel_encoder.encode(np.zeros(16000, np.float32)).tolist())) == 1
