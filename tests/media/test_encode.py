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


def _ten_bit_source(path, *, tags=None, w=320, h=240, n=3):
    """A yuv422p10le ProRes clip written plane by plane: a luma ramp with detail below the 8-bit step, chroma ramps;
    ``tags``: (matrix, primaries, transfer, range) FFmpeg codes, or None for an untagged clip."""
    import av

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("prores_ks", rate=25, options={"profile": "3", "vendor": "apl0"})
        stream.width, stream.height, stream.pix_fmt, stream.time_base = w, h, "yuv422p10le", Fraction(1, 25)
        if tags:
            ctx = stream.codec_context
            ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = tags
        for k in range(n):
            frame = av.VideoFrame(w, h, "yuv422p10le")
            planes = (64 + xx * 876 // w + rng.integers(-3, 4, (h, w)), 512 + (yy[:, : w // 2] - h // 2) * 300 // h,
                      512 - (xx[:, : w // 2] * 2 - w // 2) * 200 // w)
            for plane, values in zip(frame.planes, planes):
                buf = np.zeros(plane.buffer_size // 2, np.uint16)
                buf.reshape(-1, plane.line_size // 2)[:h, : values.shape[1]] = np.clip(values, 64, 940)
                plane.update(buf.tobytes())
            frame.pts, frame.time_base = k, Fraction(1, 25)
            if tags:
                frame.colorspace, frame.color_range = tags[0], tags[3]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _planes(path):
    import av

    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context  # as the container states them (decoding may overwrite them)
        tags = (int(ctx.colorspace), int(ctx.color_primaries), int(ctx.color_trc), int(ctx.color_range))
        frames = []
        for frame in container.decode(video=0):
            frame = frame.reformat(format="yuv422p10le")
            frames.append([np.frombuffer(p, np.uint16).reshape(-1, p.line_size // 2)[: frame.height, : frame.width // (1 if i == 0 else 2)]
                           .astype(int) for i, p in enumerate(frame.planes)])
        return frames, tags


@pytest.mark.parametrize("tags", [(9, 9, 16, 1), None], ids=["BT.2020 PQ", "untagged SD"])
def test_a_clip_keeps_its_source_colour_tags_and_matrix(tmp_path, tags):
    """Issue 20: every output was tagged and converted as BT.709 — an HDR BT.2020/PQ source came back as SDR BT.709,
    and an untagged SD source had its YUV samples recomputed with the HD matrix (98 % of samples changed, luma by 14
    codes on average). Now the tags are carried over and the RGB frames go back to YUV with the matrix they were
    decoded with (exact copies outside the matte need compositing in the source's own format: not yet)."""
    from edidub_engine.media import iter_frames

    source = tmp_path / "source.mov"
    _ten_bit_source(source, tags=tags)
    info = probe_video(source)
    out = tmp_path / "out.mov"
    _write(out, [f for _, f in iter_frames(info)], info.rate, codec=Codec.PRORES_HQ, color=info.color)
    (src, src_tags), (dub, dub_tags) = _planes(source), _planes(out)
    if tags:
        assert dub_tags == src_tags == tags and info.color.describe() == "bt2020nc/bt2020/pq, limited range"
    else:
        assert dub_tags[1:] == src_tags[1:] == (2, 2, 1)  # primaries and transfer stay unspecified (the encoder may name the matrix)
    luma = np.concatenate([(b[0] - a[0]).ravel() for a, b in zip(src, dub)])
    chroma = np.concatenate([(b[1] - a[1]).ravel() for a, b in zip(src, dub)])
    assert abs(luma.mean()) < 1.5 and abs(chroma.mean()) < 1.5 and np.abs(luma).mean() < 10
