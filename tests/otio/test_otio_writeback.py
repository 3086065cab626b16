"""Write-back: dubbed clips on a new track above the picture, round trips through .otio, FCP7 XML and EDL."""

from __future__ import annotations

import copy
import unittest
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.test_utils import OTIOAssertions

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import PassthroughRange, RenderedClip
from otio_adapters import add_dub_track, dubbed_to_string, shots_from_timeline, write_dubbed

R = 24


def _cut(build):
    return build.timeline(
        "ep101", R, 86400,
        [
            build.clip("A", "/media/a.mov", 86400 + 100, 100, R),
            build.dissolve(6, 6, R),
            build.clip("B", "/media/b.mov", 86400 + 300, 100, R),
            build.gap(24, R),
            build.clip("C", "/media/c.mov", 86400, 200, R),
        ],
        [build.gap(80, R), build.clip("l1", "/d/l1.wav", 0, 40, R, avail=(0, 500)),
         build.gap(144, R), build.clip("l2", "/d/l2.wav", 0, 30, R, avail=(0, 500))],
    )


def _render(shot, *, passthrough=()):
    """What the engine returns: the shot's source frames, source timecode kept (media starts at 01:00:00:00)."""
    tc = otio.opentime.to_timecode(otio.opentime.RationalTime(86400 + shot.source.start_frame, 24), 24)
    return RenderedClip(
        shot_id=shot.shot_id, path=f"/renders/{shot.shot_id}_dub.mov", start_frame=shot.source.start_frame,
        end_frame=shot.source.end_frame, rate=Fraction(24), timecode=tc, frames_edited=shot.source.frame_count,
        frames_passed_through=tuple(passthrough), qc={"lse_d": 7.1}, model={"name": "lsd", "version": "1", "sha256": "ab"},
        record=shot.record,
    )


@pytest.fixture
def dubbed(build):
    tl = _cut(build)
    sl = shots_from_timeline(tl, dub_track="FR dialogue")
    assert [s.shot_id for s in sl.shots] == ["V1_000_A", "V1_002_B", "V1_004_C"]
    a, b, c = sl.shots
    rendered = [_render(a), _render(b), _render(c, passthrough=[PassthroughRange(c.source.start_frame + 5, c.source.start_frame + 9, "no_face")])]
    out = add_dub_track(tl, rendered, language="fr", job_id="job-7", settings={"steps": 50})
    return tl, sl, out


def _without_dub(tl):
    tl = copy.deepcopy(tl)
    for i in reversed(range(len(tl.tracks))):
        if tl.tracks[i].name.startswith("EdiDub"):
            del tl.tracks[i]
    return tl


def _placements(track, gst_frames):
    out, t = [], 0
    for item in track:
        if isinstance(item, otio.schema.Transition):
            continue
        d = round(item.duration().rescaled_to(24).value)
        if isinstance(item, otio.schema.Clip):
            out.append((item.name, gst_frames + t, gst_frames + t + d))
        t += d
    return out


class Check(unittest.TestCase, OTIOAssertions):
    def runTest(self):  # pragma: no cover
        pass


def test_dub_track_sits_above_the_picture_at_the_record_frames(dubbed):
    tl, sl, out = dubbed
    assert [t.name for t in out.tracks] == ["Video 1", "EdiDub FR", "Original dialogue", "FR dialogue"]
    dub = out.tracks[1]
    assert dub.kind == otio.schema.TrackKind.Video
    # A and B are dubbed across their dissolve: the dub track repeats it between them
    assert [type(i).__name__ for i in dub] == ["Gap", "Clip", "Transition", "Clip", "Gap", "Clip"]
    a, b, c = sl.shots
    assert _placements(dub, 86400) == [
        ("A [EdiDub FR]", a.record["start_frame"], 86500),
        ("B [EdiDub FR]", 86500, b.record["end_frame"]),
        ("C [EdiDub FR]", c.record["start_frame"], c.record["end_frame"]),
    ]
    clip_a = dub[1]
    ref = clip_a.media_reference
    assert ref.target_url == "/renders/V1_000_A_dub.mov"
    assert ref.available_range == otio.opentime.TimeRange(otio.opentime.RationalTime(86400 + a.source.start_frame, 24),
                                                          otio.opentime.RationalTime(a.source.frame_count, 24))
    # B's render starts 6 frames before its cut (the dissolve): the clip uses them through the transition
    clip_b = dub[3]
    assert clip_b.source_range.start_time.value == 86400 + 300 and clip_b.visible_range().start_time.value == 86400 + 294
    meta = clip_a.metadata["edidub"]
    assert meta["job_id"] == "job-7" and meta["model"]["name"] == "lsd" and meta["settings"] == {"steps": 50}
    clip_c = dub[5]
    (marker,) = clip_c.markers
    assert marker.name == "EdiDub passthrough: no_face"
    assert marker.marked_range.start_time.value == 86400 + c.source.start_frame + 5 and marker.marked_range.duration.value == 4
    assert [dict(p) for p in clip_c.metadata["edidub"]["passthrough"]] == [{"start_frame": c.source.start_frame + 5, "end_frame": c.source.start_frame + 9, "reason": "no_face"}]


def test_everything_else_is_untouched(dubbed):
    tl, _, out = dubbed
    Check().assertIsOTIOEquivalentTo(_without_dub(out), tl)


def test_otio_round_trip(dubbed, tmp_path):
    _, _, out = dubbed
    path = tmp_path / "cut.dubbed.otio"
    write_dubbed(out, path)
    back = otio.adapters.read_from_file(str(path))
    check = Check()
    check.assertJsonEqual(back, out)
    check.assertIsOTIOEquivalentTo(back, out)
    with pytest.raises(InvalidArgumentError, match="never overwrites"):
        write_dubbed(out, path)


def test_fcp7_xml_round_trip(dubbed, tmp_path):
    tl, sl, out = dubbed
    path = tmp_path / "cut.dubbed.xml"
    notes = write_dubbed(out, path)
    assert any("file://" in n for n in notes)
    back = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
    # the untouched parts come back as the original does through the same adapter
    orig_text, _ = dubbed_to_string(tl, "fcp_xml")
    orig_back = otio.adapters.read_from_string(orig_text, adapter_name="fcp_xml")
    without = _without_dub(back)
    for t in without.tracks:
        t.name = t.name or ""
    Check().assertIsOTIOEquivalentTo(without.tracks[0], orig_back.tracks[0])
    # FCP7 XML has no track names: the dub track is the one above the picture, its clips say so
    dub = [back.video_tracks()[1]]
    assert all(c.name.endswith("[EdiDub FR]") for c in dub[0].find_clips())
    a, b, c = sl.shots
    gst = round(back.global_start_time.value) if back.global_start_time else 0
    placed = [(n.split(" [")[0], s, e) for n, s, e in _placements(dub[0], gst)]
    assert placed == [("A", a.record["start_frame"], 86500), ("B", 86500, b.record["end_frame"]), ("C", c.record["start_frame"], c.record["end_frame"])]
    urls = [cl.media_reference.target_url for cl in dub[0].find_clips()]
    assert urls[0].startswith("file://") and urls[0].endswith("/renders/V1_000_A_dub.mov")


def test_edl_holds_the_dub_track_alone(dubbed, tmp_path):
    _, sl, out = dubbed
    path = tmp_path / "cut.dubbed.edl"
    notes = write_dubbed(out, path)
    assert any("only the dub track" in n for n in notes)
    back = otio.adapters.read_from_file(str(path), adapter_name="cmx_3600", rate=24)
    assert len(back.tracks) == 1
    c = sl.shots[2]
    track = back.tracks[0]
    origin = -round(track.source_range.start_time.value) if track.source_range else 0
    last = list(track.find_clips())[-1]
    start = origin + round(last.range_in_parent().start_time.value)
    assert start == c.record["start_frame"]


def test_only_part_of_a_clip_dubbed(build):
    tl = build.timeline("t", R, 86400, [build.clip("long", "/m/l.mov", 86400, 400, R, avail=(86400, 400))],
                        [build.gap(200, R), build.clip("l", "/d/l.wav", 0, 20, R, avail=(0, 100))])
    (shot,) = shots_from_timeline(tl, dub_track="FR dialogue").shots
    out = add_dub_track(tl, [_render(shot)], language="de")
    dub = out.tracks[1]
    assert dub.name == "EdiDub DE"
    assert _placements(dub, 86400) == [("long [EdiDub DE]", 86400 + 188, 86400 + 232)]


def test_a_render_that_does_not_cover_the_shot_is_refused(build):
    tl = _cut(build)
    shot = shots_from_timeline(tl, dub_track="FR dialogue").shots[2]
    short = _render(shot)
    short = RenderedClip(**{**short.__dict__, "end_frame": short.start_frame + 5})
    with pytest.raises(InvalidArgumentError, match="render the shot's whole source range"):
        add_dub_track(tl, [short], language="fr")


_FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
_RESOLVE_EDL = """TITLE: resolve_like
FCM: NON-DROP FRAME

001  GRID1 V     C        00:00:00:10 00:00:01:10 01:00:20:23 01:00:21:23
* FROM CLIP NAME: grid_bbaf2n.mpg
* FROM CLIP: {footage}/grid_bbaf2n.mpg

002  GRID2 V     C        00:00:00:05 00:00:02:00 01:00:21:23 01:00:23:18
* FROM CLIP NAME: grid_brbk7n.mpg
* FROM CLIP: {footage}/grid_brbk7n.mpg

003  GRID2 V     C        00:00:00:05 00:00:01:00 01:00:24:00 01:00:24:20
* FROM CLIP NAME: grid_brbk7n.mpg
* FROM CLIP: {footage}/grid_brbk7n.mpg
"""


def _record_frames(timeline, track_name):
    """(clip name, record in, record out) of a track, record frames = global start + position."""
    rate = timeline.global_start_time.rate if timeline.global_start_time else 25
    gst = round(timeline.global_start_time.value) if timeline.global_start_time else 0
    track = next(t for t in timeline.tracks if t.name == track_name)
    return [(round(gst + c.range_in_parent().start_time.rescaled_to(rate).value),
             round(gst + c.range_in_parent().end_time_exclusive().rescaled_to(rate).value)) for c in track.find_clips()]


def test_an_edl_cut_writes_back_at_its_own_record_timecodes(tmp_path):
    """A Resolve EDL whose record side starts at 01:00:20:23: before, the written EDL started at 02:00:41:22 (the
    start applied twice), the .otio dub track sat 90 523 frames late and every event got the same truncated reel."""
    from otio_adapters import read_timeline

    from edidub_engine.timebase import frame_to_timecode

    for name in ("grid_bbaf2n.mpg", "grid_brbk7n.mpg"):
        if not (_FOOTAGE / name).is_file():
            pytest.skip(f"shared footage {_FOOTAGE / name} is absent")
    edl = tmp_path / "cut.edl"
    edl.write_text(_RESOLVE_EDL.format(footage=_FOOTAGE))
    tl = read_timeline(edl, rate=25).timeline
    sl = shots_from_timeline(tl, dub_track=None)
    assert [(s.record["start_frame"], s.record["end_frame"]) for s in sl.shots] == [(90523, 90548), (90548, 90593), (90600, 90620)]
    rendered = [RenderedClip(shot_id=s.shot_id, path=str(tmp_path / f"{s.shot_id}_dub.mov"), start_frame=s.source.start_frame,
                             end_frame=s.source.end_frame, rate=Fraction(25), timecode=frame_to_timecode(s.source.start_frame, 25),
                             frames_edited=s.source.frame_count, record=s.record) for s in sl.shots]
    out = add_dub_track(tl, rendered, language="fr")
    originals = _record_frames(out, "V")
    assert _record_frames(out, "EdiDub FR") == originals == [(90523, 90548), (90548, 90593), (90600, 90620)]

    for suffix in (".otio", ".xml", ".edl"):
        write_dubbed(out, tmp_path / f"cut.dubbed{suffix}")
    back = otio.adapters.read_from_file(str(tmp_path / "cut.dubbed.otio"))
    assert _record_frames(back, "EdiDub FR") == originals
    xml = read_timeline(tmp_path / "cut.dubbed.xml").timeline
    assert [_record_frames(xml, t.name) for t in xml.tracks if t.kind == "Video"] == [originals, originals]
    events = [line.split() for line in (tmp_path / "cut.dubbed.edl").read_text().splitlines() if line[:3].isdigit()]
    source_events = [line.split() for line in edl.read_text().splitlines() if line[:3].isdigit()]
    assert [e[-2:] for e in events] == [e[-2:] for e in source_events]  # record in/out timecodes, exactly
    assert [e[-4:-2] for e in events] == [e[-4:-2] for e in source_events]  # the renders keep the source timecodes
    assert len({e[1] for e in events}) == 3  # a reel per dubbed clip


def test_mixed_rates_write_back_at_the_timeline_rate(build, tmp_path):
    """23.976 media cut into a 25 fps timeline (Resolve's shape: clip ranges at the timeline's rate, media ranges
    at the file's). Before, add_dub_track refused shots the converter itself made (a source start rounded to a
    whole frame fell "before" the render) and the FCP7 XML placed the dub clips at 23.976 under the 25 fps sequence."""
    ntsc = Fraction(24000, 1001)

    def at_25(media_frame):  # a media frame's time, as a 25 fps value
        return float(Fraction(media_frame) / ntsc * 25)

    clips = []
    for name, k, frames in (("A", 6, 107), ("B", 240, 75), ("C", 531, 60)):
        c = build.clip(name, f"/media/{name.lower()}.mov", 0, frames, 25, avail=(86400, 2000), media_rate=ntsc)
        c.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(at_25(86400 + k) + 0.63, 25), otio.opentime.RationalTime(frames, 25))
        clips.append(c)
    tl = build.timeline("mixed", 25, 90000, [clips[0], clips[1], build.gap(20, 25), clips[2]])
    sl = shots_from_timeline(tl, dub_track=None)
    assert len(sl.shots) == 3 and not sl.skipped
    rendered = []
    for s in sl.shots:
        assert s.source.rate == ntsc
        tc = otio.opentime.to_timecode(otio.opentime.RationalTime(86400 + s.source.start_frame, ntsc), ntsc)
        rendered.append(RenderedClip(shot_id=s.shot_id, path=f"/renders/{s.shot_id}.mov", start_frame=s.source.start_frame,
                                     end_frame=s.source.end_frame, rate=ntsc, timecode=tc, frames_edited=1, record=s.record))
    out = add_dub_track(tl, rendered, language="de")
    originals = _record_frames(out, "Video 1")
    assert originals == [(90000, 90107), (90107, 90182), (90202, 90262)]
    assert _record_frames(out, "EdiDub DE") == originals
    write_dubbed(out, tmp_path / "cut.xml")
    xml = otio.adapters.read_from_file(str(tmp_path / "cut.xml"))
    placed = [[(round(c.range_in_parent().start_time.rescaled_to(25).value), round(c.range_in_parent().end_time_exclusive().rescaled_to(25).value))
               for c in t.find_clips()] for t in xml.video_tracks()]
    assert placed[0] == placed[1] == [(a - 90000, b - 90000) for a, b in originals]
    assert [t.name for t in xml.video_tracks()][1] == "EdiDub DE"  # the track's name survives (it was lost)
    assert 'MZ.TrackName="EdiDub DE"' in (tmp_path / "cut.xml").read_text()
