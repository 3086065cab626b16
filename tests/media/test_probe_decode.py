from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.errors import MediaDecodeError, MediaNotFoundError, RangeOutsideMediaError
from edidub_engine.media import iter_frames, normalize_rate, probe_video, read_frames
from edidub_engine.media.decode import _open_at

# Facts measured independently (ffprobe / the footage manifest).
EXPECTED = {
    "grid_bbaf2n.mpg": (Fraction(25), 75, "mpeg1video"),
    "hamilton_mic_occlusion.mp4": (Fraction(30000, 1001), 275, "h264"),
    "latentsync_demo1.mp4": (Fraction(25), 250, "hevc"),
    "astorfi_sample_pose.mp4": (Fraction(30000, 1001), 209, "h264"),  # edit list trims 55 pre-roll pictures
    "retalking_face1.mp4": (Fraction(30), 183, "h264"),  # VFR: 135 pictures on a 30 fps grid
    "retalking_face4.mp4": (Fraction(30), 199, "h264"),
    "sadtalker_wda_katiehill.mp4": (Fraction(25), 200, "mpeg4"),
    "styletalk_obama1.mp4": (Fraction(30), 602, "h264"),
}


def test_every_clip_probes_and_seek_decodes_bit_exact(video_clip):
    name = video_clip.name
    info = probe_video(video_clip)
    assert isinstance(info.rate, Fraction) and info.rate == normalize_rate(info.rate)
    assert info.duration_s == pytest.approx(info.frame_count / info.rate)
    assert info.timecode_at(0) == info.start_timecode
    if name in EXPECTED:
        assert (info.rate, info.frame_count, info.codec) == EXPECTED[name]

    middle = info.frame_count // 2
    wanted = range(middle, min(middle + 4, info.frame_count))
    count, kept = 0, {}
    for index, rgb in iter_frames(info):
        assert index == count
        assert rgb.shape == (info.height, info.width, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous
        if index in wanted:
            kept[index] = rgb
        count += 1
    assert count == info.frame_count  # a full decode yields exactly the grid

    sought = read_frames(info, wanted.start, wanted.stop)
    for offset, index in enumerate(wanted):
        assert np.array_equal(sought[offset], kept[index]), f"{name}: frame {index} differs after a seek"


def test_seeking_really_seeks_and_recovers_when_late(footage):
    hamilton = probe_video(footage("hamilton_mic_occlusion.mp4"))
    container, _, packets = _open_at(hamilton, 200, Fraction(0))
    assert 0 < hamilton.slot_of_pts(next(packets).pts) <= 200  # landed on a later keyframe, not the start
    container.close()
    grid = probe_video(footage("grid_bbaf2n.mpg"))
    opened = None
    for backoff in (Fraction(0), Fraction(2)):
        opened = opened or _open_at(grid, 60, backoff)
    container, _, packets = opened
    assert grid.slot_of_pts(next(packets).pts) <= 60
    container.close()


def test_vfr_is_conformed_by_frame_hold(footage):
    info = probe_video(footage("retalking_face1.mp4"))
    assert info.variable_frame_rate and info.rate == 30 and info.frame_count == 183
    assert info.video_start_s == pytest.approx(507 / 15360)
    frames = read_frames(info, 0, 12)
    # Pictures at 0, 2, 3, 4, 6, 7, 8, 10 … on the grid (gaps of 2/30 s hold the picture).
    assert np.array_equal(frames[0], frames[1])
    assert not np.array_equal(frames[1], frames[2])
    assert not np.array_equal(frames[2], frames[3])
    assert np.array_equal(frames[4], frames[5])
    assert np.array_equal(read_frames(info, 1, 2)[0], frames[1])  # a seek into a held frame gives the same picture


def test_hamilton_video_starts_after_its_audio(footage):
    info = probe_video(footage("hamilton_mic_occlusion.mp4"))
    assert info.video_start_s == pytest.approx(0.852, abs=0.001)
    assert info.audio_start_s == pytest.approx(0.008, abs=0.001)
    assert info.video_start_s - info.audio_start_s == pytest.approx(0.85, abs=0.01)
    assert info.drop_frame and info.start_timecode == "00:00:00;00"  # no timecode in the file: 29.97 is DF by convention
    assert info.timecode_at(1800) == "00:01:00;02"


def test_clip_without_audio(footage):
    info = probe_video(footage("styletalk_obama1.mp4"))
    assert not info.has_audio and info.audio_sample_rate_hz is None


def test_range_outside_clip_is_explained(footage):
    path = footage("grid_bbaf2n.mpg")
    with pytest.raises(RangeOutsideMediaError, match=r"frames \[300, 400\) are outside grid_bbaf2n.mpg, which has 75 frames"):
        iter_frames(path, 300, 400)
    for start, end in [(-1, 5), (10, 10), (70, 76)]:
        with pytest.raises(RangeOutsideMediaError):
            read_frames(path, start, end)


def test_missing_and_non_video_files(tmp_path, footage):
    with pytest.raises(MediaNotFoundError, match="nope.mov"):
        probe_video(tmp_path / "nope.mov")
    text = tmp_path / "notes.mov"
    text.write_text("not a video\n" * 50)
    with pytest.raises(MediaDecodeError, match="notes.mov"):
        probe_video(text)
    with pytest.raises(MediaDecodeError, match="has no video stream"):
        probe_video(footage("dub_fr_french1.wav"))
