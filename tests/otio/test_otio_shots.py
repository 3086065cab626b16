"""Golden tests: timelines built like Resolve/Premiere exports → shot lists with exact frames."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import opentimelineio as otio
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import AudioSegment, ShotRequest
from otio_adapters import shots_from_timeline, url_to_path

R24 = 24


def test_clip_longer_than_dub_line_resolve_shape(build):
    # media starts at 01:00:00:00 = 86400; clip shows its frames 100..199 at record 01:00:00:00
    tl = build.timeline(
        "ep101", R24, 86400,
        [build.clip("A001_C002.mov", "/media/A001_C002.mov", 86500, 100, R24)],
        [build.gap(30, R24), build.clip("fr_line1.wav", "/dub/fr_line1.wav", 48, 20, R24, avail=(0, 2400))],
    )
    sl = shots_from_timeline(tl, dub_track="FR dialogue")
    assert sl.rate == 24 and sl.global_start_frame == 86400 and not sl.skipped
    (shot,) = sl.shots
    # speech at record [86430, 86450); 12-frame handles → [86418, 86462)
    assert shot.shot_id == "V1_000_A001_C002"
    assert (shot.source.path, shot.source.start_frame, shot.source.end_frame, shot.source.rate) == ("/media/A001_C002.mov", 118, 162, 24)
    assert shot.dub_audio == (AudioSegment("/dub/fr_line1.wav", start_s=2.0, duration_s=round(20 / 24, 6), offset_s=0.5),)
    rec = shot.record
    assert (rec["start_frame"], rec["end_frame"], rec["cut_start_frame"], rec["cut_end_frame"]) == (86418, 86462, 86400, 86500)
    assert rec["timeline"] == "ep101" and rec["track"] == "Video 1" and rec["track_index"] == 0 and rec["rate"] == "24/1"
    assert rec["clip_path"] == [0, 0] and rec["clip"] == "A001_C002.mov"
    # the request survives the wire form
    assert ShotRequest.from_dict(shot.to_dict()) == shot


def test_handles_none_takes_whole_clip_and_handles_clip_to_clip(build):
    tl = build.timeline(
        "t", R24, 86400,
        [build.clip("a", "/m/a.mov", 86400, 50, R24)],
        [build.gap(2, R24), build.clip("d", "/d.wav", 0, 10, R24, avail=(0, 100))],
    )
    assert shots_from_timeline(tl, dub_track="FR dialogue").shots[0].source.start_frame == 0  # 2 - 12 clipped to the clip
    whole = shots_from_timeline(tl, dub_track="FR dialogue", handles=None).shots[0]
    assert (whole.source.start_frame, whole.source.end_frame) == (0, 50)
    assert whole.dub_audio[0].offset_s == round(2 / 24, 6)


def test_gaps_and_several_dub_clips_under_one_shot(build):
    tl = build.timeline(
        "t", R24, 86400,
        [build.gap(48, R24), build.clip("a", "file:///media/My%20Shot.mov", 86400 + 10, 200, R24)],
        [
            build.gap(60, R24), build.clip("l1", "/d/l1.wav", 24, 30, R24, avail=(0, 500)),
            build.gap(40, R24), build.clip("l2", "/d/l2.wav", 0, 24, R24, avail=(0, 500)),
        ],
    )
    (shot,) = shots_from_timeline(tl, dub_track="FR dialogue").shots
    # clip at record [86448, 86648); speech [86460, 86490) and [86530, 86554); handles → [86448, 86566)
    assert shot.record["start_frame"] == 86448 and shot.record["end_frame"] == 86566
    assert shot.source.path == "/media/My Shot.mov"
    assert (shot.source.start_frame, shot.source.end_frame) == (10, 128)
    assert [(s.path, s.start_s, s.duration_s, s.offset_s) for s in shot.dub_audio] == [
        ("/d/l1.wav", 1.0, 1.25, 0.5),
        ("/d/l2.wav", 0.0, 1.0, round(82 / 24, 6)),
    ]


def test_dissolve_handles(build):
    # A [0,100) → 12-frame dissolve centred on the cut (6/6) → B [100,200); speech near the cut on both sides
    tl = build.timeline(
        "t", R24, 86400,
        [
            build.clip("A", "/m/a.mov", 86400 + 100, 100, R24),
            build.dissolve(6, 6, R24),
            build.clip("B", "/m/b.mov", 86400 + 300, 100, R24),
        ],
        [build.gap(80, R24), build.clip("l", "/d/l.wav", 0, 40, R24, avail=(0, 500))],
    )
    a, b = shots_from_timeline(tl, dub_track="FR dialogue").shots
    # A: speech [80,100) + handles reaches the dissolve → to the dissolve's end, cut + out_offset 6
    assert (a.record["start_frame"], a.record["end_frame"]) == (86400 + 68, 86400 + 106)
    assert (a.source.start_frame, a.source.end_frame) == (168, 206)
    # B: visible from the cut - in_offset 6; its source starts 6 frames before its cut
    assert (b.record["start_frame"], b.record["end_frame"]) == (86400 + 94, 86400 + 132)
    assert (b.source.start_frame, b.source.end_frame) == (294, 332)
    assert b.record["transition_in"]["in_offset"] == 6 and a.record["transition_out"]["out_offset"] == 6
    assert [s.offset_s for s in b.dub_audio] == [0.0]
    assert b.dub_audio[0].start_s == round(14 / 24, 6)


def test_dissolve_handles_clipped_to_the_media(build):
    tl = build.timeline(
        "t", R24, 86400,
        [build.clip("A", "/m/a.mov", 86400, 100, R24, avail=(86400, 102)), build.dissolve(6, 6, R24), build.clip("B", "/m/b.mov", 86400, 50, R24)],
        [build.gap(90, R24), build.clip("l", "/d/l.wav", 0, 20, R24, avail=(0, 500))],
    )
    sl = shots_from_timeline(tl, dub_track="FR dialogue")
    a = sl.shots[0]
    assert (a.source.start_frame, a.source.end_frame) == (78, 102)
    assert any("outgoing transition" in w for w in sl.warnings)
    b = sl.shots[1]  # B has no frames before its first: its handles are clipped too
    assert b.source.start_frame == 0 and b.record["start_frame"] == 86500


@pytest.mark.parametrize(
    "effect",
    [otio.schema.LinearTimeWarp(time_scalar=2.0), otio.schema.FreezeFrame(), otio.schema.TimeEffect(name="TimeWarp", effect_name="TimeWarp"),
     otio.schema.Effect(effect_name="", metadata={"fcp_xml": {"effectid": "timeremap"}})],
)
def test_speed_effects_are_listed_and_skipped(build, effect):
    tl = build.timeline(
        "t", R24, 86400,
        [build.clip("fast", "/m/a.mov", 86400, 48, R24, effects=[effect]), build.clip("ok", "/m/b.mov", 86400, 48, R24)],
        [build.clip("l", "/d/l.wav", 0, 96, R24, avail=(0, 500))],
    )
    sl = shots_from_timeline(tl, dub_track="FR dialogue")
    assert [s.shot_id for s in sl.shots] == ["V1_001_ok"]
    (sk,) = sl.skipped
    assert (sk.clip, sk.reason, sk.record_start_frame, sk.record_end_frame) == ("fast", "time_effect", 86400, 86448)
    assert "'fast'" in sk.message and "'Video 1'" in sk.message


def test_identity_time_warp_is_fine(build):
    tl = build.timeline("t", R24, 0, [build.clip("a", "/m/a.mov", 0, 10, R24, avail=(0, 10), effects=[otio.schema.LinearTimeWarp(time_scalar=1.0)])])
    assert len(shots_from_timeline(tl, dub_track=None).shots) == 1


def test_missing_media_disabled_and_no_dub_are_listed(build):
    tl = build.timeline(
        "t", R24, 86400,
        [build.clip("offline", None, 86400, 24, R24), build.clip("off", "/m/b.mov", 86400, 24, R24, enabled=False),
         build.clip("silent", "/m/c.mov", 86400, 24, R24), build.clip("good", "/m/d.mov", 86400, 24, R24)],
        [build.gap(72, R24), build.clip("l", "/d/l.wav", 0, 10, R24, avail=(0, 500))],
    )
    sl = shots_from_timeline(tl, dub_track="A2")  # NLE-style label of the second audio track
    assert [s.clip for s in sl.skipped] == ["offline", "off", "silent"]
    assert [s.reason for s in sl.skipped] == ["missing_media", "disabled", "no_dub"]
    assert [(s.record_start_frame, s.record_end_frame) for s in sl.skipped] == [(86400, 86424), (86424, 86448), (86448, 86472)]
    assert [s.shot_id for s in sl.shots] == ["V1_003_good"]


def test_23976_timeline_as_resolve_stores_it(build):
    r = 23.976024627685547
    tl = build.timeline(
        "ntsc", r, 86400,
        [build.gap(10, r), build.clip("a", "/m/a.mov", 86400 + 5, 100, r)],
        [build.gap(20, 23.976), build.clip("l", "/d/l.wav", 0, 24, 23.976, avail=(0, 500))],
    )
    sl = shots_from_timeline(tl, dub_track="FR dialogue", handles=None)
    assert sl.rate == Fraction(24000, 1001)
    (shot,) = sl.shots
    assert shot.source.rate == Fraction(24000, 1001) and shot.record["rate"] == "24000/1001"
    assert (shot.record["start_frame"], shot.source.start_frame, shot.source.end_frame) == (86410, 5, 105)
    assert shot.dub_audio[0].duration_s == round(24 * 1001 / 24000, 6)
    assert shot.dub_audio[0].offset_s == round(10 * 1001 / 24000, 6)


def test_2997_drop_frame_timeline(build):
    r = 29.97
    start = otio.opentime.from_timecode("01:00:00;00", 30000 / 1001).value
    assert start == 107892
    tl = build.timeline("df", r, start, [build.gap(30, r), build.clip("a", "/m/a.mov", 107892 + 15, 60, r, avail=(107892, 1000))])
    sl = shots_from_timeline(tl, dub_track=None)
    (shot,) = sl.shots
    assert sl.rate == Fraction(30000, 1001) and sl.global_start_frame == 107892
    assert (shot.record["start_frame"], shot.record["end_frame"]) == (107922, 107982)
    assert (shot.source.start_frame, shot.source.end_frame, shot.source.rate) == (15, 75, Fraction(30000, 1001))
    assert shot.dub_audio == ()


def test_nested_single_track_is_flattened_and_multitrack_is_listed(build):
    inner = otio.schema.Stack(name="compound", source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(10, 24), otio.opentime.RationalTime(30, 24)))
    t = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    t.append(build.clip("inner", "/m/in.mov", 0, 100, R24, avail=(0, 100)))
    inner.append(t)
    multi = otio.schema.Stack(name="multi")
    for _ in range(2):
        tt = otio.schema.Track(kind=otio.schema.TrackKind.Video)
        tt.append(build.clip("x", "/m/x.mov", 0, 10, R24, avail=(0, 10)))
        multi.append(tt)
    tl = build.timeline("n", R24, 0, [build.gap(5, R24), inner, multi])
    sl = shots_from_timeline(tl, dub_track=None)
    (shot,) = sl.shots
    assert (shot.record["start_frame"], shot.record["end_frame"], shot.source.start_frame, shot.source.end_frame) == (5, 35, 10, 40)
    assert shot.record["clip_path"] == [0, 1, 0, 0]
    assert [(s.clip, s.reason) for s in sl.skipped] == [("multi", "nested")]


def test_track_choice_errors_name_the_tracks(build):
    tl = build.timeline("t", R24, 0, [build.clip("a", "/m/a.mov", 0, 10, R24, avail=(0, 10))])
    with pytest.raises(InvalidArgumentError, match="no audio track named 'DE'") as e:
        shots_from_timeline(tl, dub_track="DE")
    assert "FR dialogue" in e.value.hint
    with pytest.raises(InvalidArgumentError, match="no video track"):
        shots_from_timeline(tl, dub_track=None, picture_tracks="V9")


def test_metadata_overrides_id_and_options(build):
    c = build.clip("a", "/m/a.mov", 0, 10, R24, avail=(0, 10))
    c.metadata["edidub"] = {"shot_id": "sc01_sh010", "options": {"steps": 20, "seed": 3}}
    sl = shots_from_timeline(build.timeline("t", R24, 0, [c]), dub_track=None)
    assert sl.shots[0].shot_id == "sc01_sh010" and sl.shots[0].options.steps == 20 and sl.shots[0].options.seed == 3


@pytest.mark.parametrize(
    "url,path",
    [("file://localhost/D%3a/media/a%20b.mov", "D:/media/a b.mov"), ("file:///Volumes/M/x.mov", "/Volumes/M/x.mov"),
     ("/mnt/media/x.mov", "/mnt/media/x.mov"), ("C:/projects/x.mov", "C:/projects/x.mov"), ("file://server/share/x.mov", "//server/share/x.mov")],
)
def test_media_urls(url, path):
    assert url_to_path(url) == (path, None)


def test_importing_otio_adapters_stays_light():
    code = (
        "import sys, otio_adapters, otio_adapters.edidub_json, otio_adapters.edidub_csv;"
        "heavy=[m for m in ('torch','av','mediapipe','cv2','numpy','transformers','edidub_engine.media','edidub_engine.face') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("submaster", [False, True])
def test_a_track_nested_in_a_track_avid_shape(build, submaster):
    """OTIO's AAF reader turns an Avid nest (a Submaster effect) into a Track inside the track; the conversion raised
    a raw AttributeError (a track has no media reference). A plain one is flattened exactly; one with an effect is
    listed as nested."""
    R = 24
    tl = build.timeline("avid", R, 86400, [build.clip("A", "/m/a.mov", 10, 20, R, avail=(0, 1000))],
                        [build.clip("line", "/d/l.wav", 0, 50, R, avail=(0, 1000))])
    inner = otio.schema.Track(name="Submaster", kind=otio.schema.TrackKind.Video,
                              source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(5, R), otio.opentime.RationalTime(25, R)))
    inner.append(build.clip("B", "/m/b.mov", 100, 40, R, avail=(0, 1000)))
    if submaster:
        inner.effects.append(otio.schema.Effect(name="Submaster", effect_name="Submaster"))
    tl.tracks[0].append(inner)
    sl = shots_from_timeline(tl, dub_track="FR dialogue", handles=None)
    got = [(s.source.path, s.source.start_frame, s.source.end_frame, s.record["start_frame"], s.record["end_frame"]) for s in sl.shots]
    if submaster:
        assert got == [("/m/a.mov", 10, 30, 86400, 86420)] and [(k.clip, k.reason) for k in sl.skipped] == [("Submaster", "nested")]
    else:  # the nest's own trim: B from its frame 105, right after A
        assert got == [("/m/a.mov", 10, 30, 86400, 86420), ("/m/b.mov", 105, 130, 86420, 86445)] and not sl.skipped
