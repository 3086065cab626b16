from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.media import ClipWriter, Codec, load_audio, probe_video, read_frames


def _tone(seconds: float, sample_rate_hz: int = 16000) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate_hz)) / sample_rate_hz
    return (0.25 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _write(path, frames, rate, **kwargs):
    height, width = frames[0].shape[:2]
    with ClipWriter(path, width=width, height=height, rate=rate, **kwargs) as writer:
        for frame in frames:
            writer.write(frame)
    return writer


def test_codec_extensions():
    assert (Codec.PRORES_HQ.extension, Codec.H264.extension, Codec.FFV1.extension) == (".mov", ".mp4", ".mkv")
    assert Codec("prores_hq") is Codec.PRORES_HQ


def test_prores_hq_round_trip_with_drop_frame_timecode(tmp_path, footage):
    source = probe_video(footage("hamilton_mic_occlusion.mp4"))
    frames = read_frames(source, 100, 112)
    out = tmp_path / "shot.mov"
    _write(out, frames, source.rate, codec=Codec.PRORES_HQ, timecode="01:00:00;00", audio=_tone(0.3))
    info = probe_video(out)
    assert (info.codec, info.codec_profile, info.pix_fmt) == ("prores", "HQ", "yuv422p10le")
    assert (info.audio_codec, info.audio_sample_rate_hz, info.audio_channels) == ("pcm_s24le", 48000, 1)
    assert (info.rate, info.frame_count, info.width, info.height) == (Fraction(30000, 1001), 12, 640, 360)
    assert info.start_timecode == "01:00:00;00" and info.drop_frame and info.timecode_at(11) == "01:00:00;11"
    decoded = read_frames(info, 0, 12)
    assert np.abs(decoded.astype(int) - frames).mean() < 1.5  # 10-bit 4:2:2: close, not exact
    audio = load_audio(out, sample_rate_hz=48000)
    assert len(audio) == round(Fraction(12) / info.rate * 48000)  # 19219: exactly the video's duration
    np.testing.assert_allclose(load_audio(out)[:4000], _tone(0.25)[:4000], atol=2e-3)


def test_h264_review_copy_keeps_25fps_timecode(tmp_path, footage):
    frames = read_frames(footage("grid_bbaf2n.mpg"), 20, 45)
    out = tmp_path / "review.mp4"
    _write(out, frames, 25, codec="h264", timecode="10:00:00:00", audio=_tone(3.0))  # longer audio is cut
    info = probe_video(out)
    assert (info.codec, info.pix_fmt, info.audio_codec, info.rate, info.frame_count) == ("h264", "yuv420p", "aac", 25, 25)
    assert info.start_timecode == "10:00:00:00" and not info.drop_frame and info.timecode_at(25) == "10:00:01:00"
    assert len(load_audio(out, sample_rate_hz=48000)) == 48000
    assert np.abs(read_frames(info, 0, 25).astype(int) - frames).mean() < 3


def test_ffv1_is_bit_exact_for_random_and_real_frames(tmp_path, footage):
    rng = np.random.default_rng(7)
    random_frames = [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8) for _ in range(6)]  # odd sizes are fine
    out = tmp_path / "noise.mkv"
    _write(out, random_frames, Fraction(24000, 1001), codec=Codec.FFV1, timecode="00:59:59:12", audio=_tone(0.01))
    info = probe_video(out)
    assert (info.codec, info.frame_count, info.rate, info.start_timecode) == ("ffv1", 6, Fraction(24000, 1001), "00:59:59:12")
    assert np.array_equal(read_frames(info, 0, 6), np.stack(random_frames))
    assert len(load_audio(out, sample_rate_hz=48000)) == round(Fraction(6 * 1001, 24000) * 48000)  # short audio is padded

    real = read_frames(footage("retalking_face1.mp4"), 0, 10)
    out = tmp_path / "real.mkv"
    _write(out, real, 30, codec=Codec.FFV1)
    assert np.array_equal(read_frames(out, 0, 10), real)
    assert not probe_video(out).has_audio


def test_writer_validates_its_inputs(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"\.mp4"):
        ClipWriter(tmp_path / "a.mov", width=64, height=48, rate=25, codec=Codec.H264)
    with pytest.raises(InvalidArgumentError, match="even"):
        ClipWriter(tmp_path / "a.mp4", width=63, height=48, rate=25, codec=Codec.H264)
    with pytest.raises(InvalidArgumentError, match="drop-frame"):
        ClipWriter(tmp_path / "a.mov", width=64, height=48, rate=25, timecode="01:00:00;00")
    with pytest.raises(InvalidArgumentError, match="mono"):
        ClipWriter(tmp_path / "a.mov", width=64, height=48, rate=25, audio=np.zeros((100, 2), np.float32))
    with pytest.raises(InvalidArgumentError, match=r"uint8 of shape \(48, 64, 3\)"):
        with ClipWriter(tmp_path / "a.mov", width=64, height=48, rate=25) as writer:
            writer.write(np.zeros((48, 64, 3), np.float32))
    assert list(tmp_path.iterdir()) == []  # nothing published, no temp left


def test_prores_4444_keeps_alpha(tmp_path):
    import av

    rgba = np.zeros((48, 64, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[10:30, 20:40, 3] = 255
    rgba[15:25, 25:35, 3] = 128
    out = tmp_path / "patch.mov"
    with ClipWriter(out, width=64, height=48, rate=Fraction(24000, 1001), codec=Codec.PRORES_4444, timecode="01:00:00:00") as writer:
        writer.write(rgba)
        with pytest.raises(InvalidArgumentError):
            writer.write(rgba[..., :3].copy())  # alpha codecs take RGBA
    info = probe_video(out)
    assert (info.codec, info.codec_profile, info.start_timecode) == ("prores", "4444", "01:00:00:00")
    with av.open(str(out)) as container:
        alpha = next(container.decode(video=0)).to_ndarray(format="rgba")[..., 3]
    assert np.abs(alpha.astype(int) - rgba[..., 3]).max() <= 1


def test_prores_encoding_is_deterministic(footage, tmp_path):
    """The same frames give the same pixels every time (a threaded RGB->YUV conversion did not)."""
    frames = read_frames(footage("retalking_face2.mp4"), 0, 8)
    decoded = []
    for name in ("a.mov", "b.mov"):
        with ClipWriter(tmp_path / name, width=frames.shape[2], height=frames.shape[1], rate=Fraction(25)) as writer:
            for frame in frames:
                writer.write(frame)
        decoded.append(read_frames(tmp_path / name, 0, 8))
    assert np.array_equal(decoded[0], decoded[1])
