from fractions import Fraction

import av
import numpy as np
import pytest

from edidub_engine.errors import MediaDecodeError, MediaNotFoundError, RangeOutsideMediaError
from edidub_engine.media import load_audio, load_audio_for_frames, probe_video


@pytest.fixture
def click_wav(tmp_path):
    """3 s of stereo 44.1 kHz silence with one click at exactly 1.000 s."""
    path = tmp_path / "click.wav"
    samples = np.zeros((44100 * 3, 2), np.int16)
    samples[44100] = 20000
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=44100, layout="stereo")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate, frame.pts = 44100, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("sample_rate_hz", [16000, 22050, 48000])
def test_resampling_keeps_time_exact(click_wav, sample_rate_hz):
    audio = load_audio(click_wav, sample_rate_hz=sample_rate_hz)
    assert audio.dtype == np.float32 and audio.ndim == 1 and len(audio) == 3 * sample_rate_hz
    assert int(np.argmax(np.abs(audio))) == sample_rate_hz  # the click stays at 1.000 s


def test_offsets_and_padding(click_wav):
    part = load_audio(click_wav, start_s=0.5, duration_s=1.0)
    assert len(part) == 16000 and int(np.argmax(np.abs(part))) == 8000
    tail = load_audio(click_wav, start_s=2.5, duration_s=1.0)  # runs 0.5 s past the end
    assert len(tail) == 16000 and not tail[8000:].any()
    assert len(load_audio(click_wav, start_s=1.0, duration_s=0.0)) == 0
    with pytest.raises(RangeOutsideMediaError, match="click.wav"):
        load_audio(click_wav, start_s=3.5, duration_s=1.0)


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("dub_de_german1.wav", 139392 / 16000),  # 16 kHz mono wav
        ("dub_en_jfk.flac", 11.0),  # 44.1 kHz stereo flac
        ("real3d_may_5s.mp4", 5.0),  # AAC: 240640 decoded samples, 240000 declared — the padding is cut
        ("retalking_face2.mp4", 221162 / 44100),
    ],
)
def test_full_length_is_exact_and_aac_padding_is_trimmed(footage, name, seconds):
    audio = load_audio(footage(name))
    assert audio.dtype == np.float32 and len(audio) == round(seconds * 16000)


def test_seek_read_matches_full_read(footage):
    for name in ("retalking_face2.mp4", "grid_bbaf2n.mpg", "dub_en_jfk.flac"):
        path = footage(name)
        whole = load_audio(path)
        part = load_audio(path, start_s=1.25, duration_s=1.0)
        assert len(part) == 16000
        np.testing.assert_allclose(part, whole[20000:36000], atol=1e-3, err_msg=name)


def test_mp2_in_program_stream(footage):
    audio = load_audio(footage("grid_bbaf2n.mpg"), start_s=0.5, duration_s=2.0)
    assert len(audio) == 32000 and np.abs(audio).max() > 0.01


def test_stream_starting_late_is_zero_padded_and_frames_line_up(footage):
    path = footage("hamilton_mic_occlusion.mp4")
    head = load_audio(path, duration_s=0.05)
    assert not head[:120].any() and head[130:].any()  # audio starts at 353/44100 s = sample 128
    info = probe_video(path)
    under = load_audio_for_frames(info, 30, 60)
    assert len(under) == round(30 / info.rate * 16000)
    same = load_audio(path, start_s=info.video_start + Fraction(30) / info.rate, duration_s=Fraction(30) / info.rate)
    assert np.array_equal(under, same)


def test_audio_errors(tmp_path, footage):
    with pytest.raises(MediaDecodeError, match="styletalk_obama1.mp4 has no audio"):
        load_audio(footage("styletalk_obama1.mp4"))
    with pytest.raises(MediaDecodeError, match="styletalk_obama1.mp4 has no audio"):
        load_audio_for_frames(footage("styletalk_obama1.mp4"), 0, 10)
    with pytest.raises(MediaNotFoundError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(RangeOutsideMediaError, match="grid_bbaf2n.mpg"):
        load_audio_for_frames(footage("grid_bbaf2n.mpg"), 70, 80)
