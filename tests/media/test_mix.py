"""The dub track read a block at a time equals the whole track, and the writer encodes it like an array."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.media import ClipWriter, Codec, load_audio
from edidub_engine.media.mix import AudioMix, MixPiece


def _pieces(footage_path):
    wav, aac = footage_path("dub_fr_french1.wav"), footage_path("retalking_face2.mp4")
    return [
        MixPiece(wav, Fraction(1, 2), Fraction(3, 10), Fraction(3)),  # 3 s of the line from 0.5 s, at 0.3 s
        MixPiece(aac, Fraction(0), Fraction(2), Fraction(5, 2)),  # overlaps the first: summed
    ]


@pytest.mark.parametrize("rate", [48000, 16000])
def test_block_reads_are_seamless_and_equal_the_whole_mix(footage_path, rate):
    pieces = _pieces(footage_path)
    whole = AudioMix(pieces, length_s=Fraction(5), sample_rate_hz=rate, block_s=5).read(5 * rate)  # one block
    reader = AudioMix(pieces, length_s=Fraction(5), sample_rate_hz=rate, block_s=1)
    parts = [reader.read(count) for count in (1, 1023, 4096, 77777, 1000000)]  # the last runs past the end: zeros
    streamed = np.concatenate(parts)[: len(whole)]
    assert len(whole) == 5 * rate and np.abs(streamed - whole).max() < 1e-4  # resampler state at block edges
    assert not np.concatenate(parts)[len(whole):].any()
    # each piece lands where it was placed: silence before the first one, the wav's own samples after it
    at = int(0.3 * rate)
    assert not whole[:at].any()
    line = load_audio(pieces[0].path, start_s=0.5, duration_s=1.0, sample_rate_hz=rate)
    np.testing.assert_allclose(whole[at : at + rate // 2], line[: rate // 2], atol=1e-6)


def test_writer_encodes_a_reader_exactly_as_the_same_samples_given_whole(footage_path, tmp_path):
    pieces = _pieces(footage_path)
    frames = np.zeros((50, 64, 64, 3), np.uint8)  # 2 s at 25 fps
    outputs = []
    for name, audio in (("array", AudioMix(pieces, length_s=Fraction(2), sample_rate_hz=48000).read(96000)),
                        ("reader", AudioMix(pieces, length_s=Fraction(2), sample_rate_hz=48000))):
        with ClipWriter(tmp_path / f"{name}.mov", width=64, height=64, rate=25, codec=Codec.PRORES_HQ,
                        audio=audio, audio_sample_rate_hz=48000) as writer:
            for frame in frames:
                writer.write(frame)
        outputs.append(load_audio(tmp_path / f"{name}.mov", sample_rate_hz=48000))
    assert len(outputs[0]) == 96000 and np.array_equal(outputs[0], outputs[1])
    assert np.abs(outputs[1]).max() > 0.01
