"""Every shared export either gives a shot list whose frames match the file, or a clear error.

Most exports have no dub track, so they run with ``dub_track=None`` (every picture clip is a
shot).  Frames are checked against values read off the files themselves (XML <start>/<in>,
EDL timecodes, AAF timecodes as the MANIFEST lists them).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from edidub_engine.errors import InvalidArgumentError, MediaNotFoundError
from otio_adapters import read_timeline, shots_from_timeline

TIMELINES = Path(__file__).resolve().parents[2].parent / "shared" / "timelines"

# file → (shots, {skipped reason: count}) or an error message pattern
EXPECTED = {
    "aaf_2997fps-DFTC.aaf": (1, {}),
    "aaf_misc_speed_effects.aaf": (2, {"time_effect": 8}),
    "aaf_multitrack.aaf": (5, {}),
    "aaf_transitions.aaf": (4, {}),
    "avid_cdl_example01.edl": (0, {"missing_media": 39}),
    "avid_eg101_heists_roughcut.edl": "incorrect edit type 008",
    "avid_ins4_r1_video.edl": (0, {"missing_media": 277, "time_effect": 10}),
    "avid_ins4_r3_dx_audio.edl": "has no video track",  # its 48 fps source timecodes no longer stop the read
    "avid_speed_effects.edl": (0, {"missing_media": 532, "time_effect": 16}),
    "avid_tl01_music_df.edl": "has no video track",
    # 18 events whose drop-frame record side is 4 frames shorter than the source side: placed by record, not dubbed
    "edlx_fcpx_5994_df.edl": (0, {"missing_media": 233, "time_effect": 18}),
    "fcpx_dfk_23.98.fcpxml": "reads NTSC rates as whole numbers",
    "fcpx_dfk_29.97d.fcpxml": "reads NTSC rates as whole numbers",
    "fcpx_dfk_BasicMarkers_1HourProjectStart.fcpxml": "reads NTSC rates as whole numbers",
    "fcpx_dfk_Complex.fcpxml": r"fcpx_xml adapter cannot read this file \(AttributeError",
    "fcpx_example.fcpxml": "holds 2 timelines: 'OpenTimeline_Project', 'OpenTimeline_Project 1'",
    "hiero_ayon_timeline.otio": (5, {"unsupported_media": 4, "time_effect": 1}),
    "hiero_xml_export.xml": (1, {"time_effect": 1}),
    "premiere_example.xml": (6, {"nested": 1, "generator": 1}),
    "premiere_generators.xml": (0, {"generator": 6}),
    "premiere_sequence01_25.edl": (0, {"missing_media": 7}),
    "resolve_conform_issue02.edl": (0, {"missing_media": 10}),
    "resolve_effects.otio": (0, {"outside_media": 14, "disabled": 2, "missing_media": 4}),
    "resolve_fcp7_60p.xml": (9, {}),
}


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)  # pyaaf2 logs Fraction(0,0) noise
    yield
    logging.disable(logging.NOTSET)


def _file(name):
    path = TIMELINES / name
    if not path.is_file():
        pytest.skip(f"shared timeline {path} is absent")
    return path


def test_every_shared_export_is_in_the_table():
    if not TIMELINES.is_dir():
        pytest.skip(f"{TIMELINES} is absent")
    present = {p.name for p in TIMELINES.iterdir() if p.suffix != ".md"}
    assert present <= set(EXPECTED), f"add these to EXPECTED: {sorted(present - set(EXPECTED))}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shot_list_or_clear_error(name):
    path = _file(name)
    expected = EXPECTED[name]
    if isinstance(expected, str):
        with pytest.raises(InvalidArgumentError, match=expected) as err:
            shots_from_timeline(read_timeline(path).timeline, dub_track=None)
        assert name in str(err.value) or "timeline" in str(err.value)
        return
    shots, skipped = expected
    sl = shots_from_timeline(read_timeline(path).timeline, dub_track=None)
    assert len(sl.shots) == shots
    assert dict(Counter(s.reason for s in sl.skipped)) == skipped
    for s in sl.shots:
        assert 0 <= s.source.start_frame < s.source.end_frame
        assert s.record["start_frame"] < s.record["end_frame"]


def test_resolve_fcp7_frames_match_the_xml():
    path = _file("resolve_fcp7_60p.xml")
    text = path.read_text()
    block = re.search(r"<clipitem\b.*?</clipitem>", text, re.S).group(0)
    start, end, src_in, src_out = (int(re.search(rf"<{tag}>(-?\d+)</{tag}>", block).group(1)) for tag in ("start", "end", "in", "out"))
    f = read_timeline(path)
    sl = shots_from_timeline(f.timeline, dub_track=None)
    shot = sl.shots[0]
    assert sl.rate == 60 and sl.global_start_frame == 216000  # 01:00:00:00 at 60
    assert (shot.source.start_frame, shot.source.end_frame) == (src_in, src_out)
    assert (shot.record["start_frame"], shot.record["end_frame"]) == (216000 + start, 216000 + end)
    assert shot.source.path.startswith("/Volumes/")


def test_premiere_aaf_drop_frame_at_hour_5():
    sl = shots_from_timeline(read_timeline(_file("aaf_2997fps-DFTC.aaf")).timeline, dub_track=None)
    (shot,) = sl.shots
    assert sl.rate == Fraction(30000, 1001) and sl.global_start_frame == 539460  # 05:00:00;00 DF
    assert (shot.record["start_frame"], shot.record["end_frame"]) == (539460, 539460 + 2989)
    # 23.976 media under a 29.97 sequence: its own frames, 2989 * 24/30 = 2391.2 → all 2391 of them
    assert (shot.source.start_frame, shot.source.end_frame, shot.source.rate) == (0, 2391, Fraction(24000, 1001))


def test_avid_aaf_dissolve_handles():
    sl = shots_from_timeline(read_timeline(_file("aaf_transitions.aaf")).timeline, dub_track=None)
    hawk = next(s for s in sl.shots if s.record["clip"] == "t-hawk (loop)-HD.mp4")
    # cut at record 117..194 after 01:00:00:00; a 48-frame dissolve before it, 12 frames after
    assert (hawk.record["cut_start_frame"], hawk.record["cut_end_frame"]) == (86400 + 117, 86400 + 194)
    assert (hawk.record["start_frame"], hawk.record["end_frame"]) == (86400 + 117 - 48, 86400 + 194 + 12)
    assert (hawk.source.start_frame, hawk.source.end_frame) == (123 - 48, 123 + 77 + 12)  # media starts at 86400


def test_fcpx_choose_by_name():
    f = read_timeline(_file("fcpx_example.fcpxml"), timeline_name="OpenTimeline_Project")
    assert f.timeline_names == ["OpenTimeline_Project", "OpenTimeline_Project 1"]
    assert any("transition" in w for w in f.warnings)
    sl = shots_from_timeline(f.timeline, dub_track=None)
    assert len(sl.shots) == 8 and [s.reason for s in sl.skipped] == ["nested", "nested"]


def test_edl_record_frames_match_the_timecodes():
    path = _file("resolve_conform_issue02.edl")
    f = read_timeline(path)
    assert f.rate == 24 and not f.lenient and any("rate not given" in w for w in f.warnings)
    events = re.findall(r"^\d+\s+\S+\s+V\s+C\s+(\S+) (\S+) (\S+) (\S+)", path.read_text(), re.M)

    def tc(t):
        return round(otio.opentime.from_timecode(t, 24).value)

    # EDLs carry reels, not files: every clip is listed with its record range
    sl = shots_from_timeline(f.timeline, dub_track=None)
    assert [(s.record_start_frame, s.record_end_frame) for s in sl.skipped] == [(tc(e[2]), tc(e[3])) for e in events]
    # a resolver that knows the camera files (here: timecode 00:00:00:00, long enough) makes them shots
    def resolver(clip):
        rng = otio.opentime.TimeRange(otio.opentime.RationalTime(0, 24), otio.opentime.RationalTime(24 * 3600 * 24, 24))
        return otio.schema.ExternalReference(target_url=f"/camera/{clip.name}", available_range=rng)

    sl = shots_from_timeline(f.timeline, dub_track=None, resolve_media=resolver)
    assert [(s.source.start_frame, s.source.end_frame, s.record["start_frame"]) for s in sl.shots] == [
        (tc(e[0]), tc(e[1]), tc(e[2])) for e in events
    ]


def test_edl_bom_header_and_lenient_notes():
    f = read_timeline(_file("premiere_sequence01_25.edl"))
    assert f.rate == 25 and f.lenient and any("ignore_timecode_mismatch" in w for w in f.warnings)
    f = read_timeline(_file("edlx_fcpx_5994_df.edl"))
    assert f.rate == Fraction(60000, 1001) and any("header comment" in w for w in f.warnings)
    f = read_timeline(_file("avid_tl01_music_df.edl"))  # reads (drop frame from FCM); it just has no picture
    assert f.rate == Fraction(30000, 1001) and any("drop frame" in w for w in f.warnings)
    with pytest.raises(InvalidArgumentError, match="rate= is only for EDLs"):
        read_timeline(_file("aaf_multitrack.aaf"), rate=24)


def test_resolve_otio_offline_media_with_a_resolver():
    f = read_timeline(_file("resolve_effects.otio"))

    def resolver(clip):  # relink the offline layouts, keeping Resolve's own media extent
        return otio.schema.ExternalReference(target_url=f"/relinked/{clip.name}", available_range=clip.media_reference.available_range)

    sl = shots_from_timeline(f.timeline, dub_track=None, picture_tracks="Video 5", resolve_media=resolver)
    assert [(s.source.start_frame, s.source.end_frame, s.record["start_frame"]) for s in sl.shots] == [
        (0, 500, 86400), (0, 316, 86900), (0, 211, 87216), (0, 98, 87427)
    ]


def test_shared_export_with_an_audio_track_as_dub():
    sl = shots_from_timeline(read_timeline(_file("aaf_multitrack.aaf")).timeline, dub_track="A1", picture_tracks="V1")
    assert sl.shots and all(s.dub_audio for s in sl.shots)
    for s in sl.shots:
        assert s.dub_audio[0].offset_s >= 0 and s.record["start_frame"] >= s.record["cut_start_frame"]


def test_unknown_and_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(MediaNotFoundError, match="does not exist") as missing:  # exit 3, as for a missing video
        read_timeline(tmp_path / "nope.otio")
    assert missing.value.exit_status == 3
    bad = tmp_path / "cut.prproj"
    bad.write_text("x")
    with pytest.raises(InvalidArgumentError, match="unsupported timeline format"):
        read_timeline(bad)
    broken = tmp_path / "cut.otio"
    broken.write_text("{not json")
    with pytest.raises(InvalidArgumentError, match="otio_json adapter cannot read"):
        read_timeline(broken)


def test_disabled_clips_and_tracks_of_an_fcp7_export_are_not_dubbed(tmp_path):
    """Premiere and Resolve write <enabled>FALSE</enabled> on a clipitem or a track; OTIO's adapter reads both as enabled."""
    text = _file("resolve_fcp7_60p.xml").read_text(encoding="utf-8")
    clip_flag = text.index("<enabled>", text.index("<clipitem"))  # the first clip's own flag
    text = text[:clip_flag] + "<enabled>FALSE</enabled>" + text[clip_flag + len("<enabled>TRUE</enabled>"):]
    (tmp_path / "cut.xml").write_text(text, encoding="utf-8")
    sl = shots_from_timeline(read_timeline(tmp_path / "cut.xml").timeline, dub_track=None)
    assert len(sl.shots) == 8 and dict(Counter(s.reason for s in sl.skipped)) == {"disabled": 1}  # 9 shots with it enabled

    track = text.index("<track")
    flag = text.index("<enabled>", text.rindex("</clipitem>", 0, text.index("</track>", track)))  # the track's own flag
    text = text[:flag] + "<enabled>FALSE</enabled>" + text[flag + len("<enabled>TRUE</enabled>"):]
    (tmp_path / "cut2.xml").write_text(text, encoding="utf-8")
    timeline = read_timeline(tmp_path / "cut2.xml").timeline
    assert not timeline.tracks[0].enabled
    disabled_track = shots_from_timeline(timeline, dub_track=None)
    assert len(disabled_track.shots) < 8 and all(s.reason == "disabled" for s in disabled_track.skipped)


_RETIMED_EDL = """TITLE: retimed
FCM: NON-DROP FRAME

001  A V     C        00:00:00:00 00:00:01:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: a
002  B V     C        00:00:00:00 00:00:02:00 01:00:01:00 01:00:02:00
M2   B       048.0                00:00:00:00
* FROM CLIP NAME: b (an M2 the adapter reads)
003  C V     C        00:00:00:00 00:00:01:12 01:00:02:00 01:00:03:00
* FROM CLIP NAME: c (source runs 36 frames for 24, no M2)
004  D V     C        00:00:00:40 00:00:02:30 01:00:03:00 01:00:04:00
M2   D       048.0                00:00:00:40
* FROM CLIP NAME: d (a 48 fps source's timecodes)
005  E V     C        00:00:01:00 00:00:02:00 01:00:04:00 01:00:05:00
* FROM CLIP NAME: e
"""


def test_retimed_edl_events_never_shift_the_events_after_them(tmp_path):
    """Before, the lenient read placed event 003 by its source duration and shifted every later event; a 48 fps
    source's timecodes stopped the read. Every event sits at its record timecodes now; the untrusted ones are skipped."""
    path = tmp_path / "retimed.edl"
    path.write_text(_RETIMED_EDL)
    f = read_timeline(path, rate=24)
    assert not f.lenient and any("2 event(s) whose source side disagrees" in w for w in f.warnings)
    sl = shots_from_timeline(f.timeline, dub_track=None)
    placed = sorted([(s.record_start_frame, s.record_end_frame, s.clip.split()[0], s.reason) for s in sl.skipped])
    assert placed == [(86400 + 24 * k, 86424 + 24 * k, name, reason) for k, (name, reason) in
                      enumerate([("a", "missing_media"), ("b", "time_effect"), ("c", "time_effect"), ("d", "time_effect"), ("e", "missing_media")])]
    why = {s.clip.split()[0]: s.message for s in sl.skipped}
    assert "runs 36 frames for 24 record frames" in why["c"] and "not 24/1 fps timecodes" in why["d"] and "speed 200%" in why["b"]


_FCPX_25I = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE fcpxml>
<fcpxml version="1.8">
    <resources>
        <format id="r1" name="FFVideoFormat1080i50" frameDuration="200/5000s" fieldOrder="upper first" width="1920" height="1080"/>
        <format id="r2" name="FFVideoFormat1080p25" frameDuration="100/2500s" width="1920" height="1080"/>
        <format id="r3" name="FFVideoFormat1080p2997" frameDuration="1001/30000s" width="1920" height="1080"/>
        <asset id="r4" name="Interview" src="file:///media/interview.mov" start="0s" duration="100s" hasVideo="1" format="r2" hasAudio="1"/>
        <asset id="r5" name="Broll" src="file:///media/broll.mov" start="0s" duration="100s" hasVideo="1" format="r3" hasAudio="1"/>
    </resources>
    <library>
        <event name="Day 1">
            <project name="Scene 5 25i">
                <sequence format="r1" duration="10s" tcStart="3600s" tcFormat="NDF">
                    <spine>
                        <asset-clip ref="r4" offset="3600s" name="Interview" start="10s" duration="4s" format="r2" tcFormat="NDF"/>
                        <asset-clip ref="r5" offset="3604s" name="Broll" start="1001/1000s" duration="4s" format="r3" tcFormat="NDF"/>
                        <asset-clip ref="r4" offset="3608s" name="Interview2" start="20s" duration="2s" format="r2" tcFormat="NDF"/>
                    </spine>
                </sequence>
            </project>
        </event>
    </library>
</fcpxml>
"""


def test_fcpx_25i_project_with_an_ntsc_asset_is_read_and_only_that_clip_is_left_out(tmp_path):
    """Before, any 1001-based frameDuration in the file refused the project, naming 30000/1001 for a 25i cut; and an
    NTSC sequence written as 15015/360000s was not caught at all. Now the project's own rate decides, and the clips
    of an NTSC asset (whose source times the adapter misreads) are listed, not dubbed from wrong frames."""
    path = tmp_path / "scene5.fcpxml"
    path.write_text(_FCPX_25I)
    f = read_timeline(path)
    sl = shots_from_timeline(f.timeline, dub_track=None)
    assert [(s.record["clip"], s.record["start_frame"], s.record["end_frame"]) for s in sl.shots] == [
        ("Interview", 90000, 90100), ("Interview2", 90200, 90250)]  # 25 fps record frames from 01:00:00:00
    assert [(s.clip, s.reason) for s in sl.skipped] == [("Broll", "untrusted_source")]
    assert any("NTSC assets (Broll)" in w for w in f.warnings)
    ntsc_project = tmp_path / "ntsc.fcpxml"
    ntsc_project.write_text(_FCPX_25I.replace('frameDuration="200/5000s"', 'frameDuration="15015/360000s"'))
    with pytest.raises(InvalidArgumentError, match="FCP X project at 24000/1001 fps"):
        read_timeline(ntsc_project)


def _camera(clip):
    """A resolver for the exports' offline media: a long camera file at the clip's rate, timecode 00:00:00:00."""
    rate = clip.source_range.start_time.rate if clip.source_range else 24
    rng = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(rate * 3600 * 30, rate))
    return otio.schema.ExternalReference(target_url=f"/camera/{clip.name or 'clip'}.mov", available_range=rng)


def _placed(timeline, track):
    """(record in, record out) of the clips of ``track`` (a name), as global start + position at the timeline's rate."""
    gst = timeline.global_start_time
    rate = gst.rate if gst is not None else None
    start = round(gst.value) if gst is not None else 0
    out = []
    for t in timeline.tracks:
        if t.name == track:
            for c in t.find_clips():
                r = c.range_in_parent()
                at = rate or r.start_time.rate
                out.append((start + round(r.start_time.rescaled_to(at).value), start + round(r.end_time_exclusive().rescaled_to(at).value)))
    return sorted(out)


@pytest.mark.parametrize("name", [n for n, e in EXPECTED.items() if not isinstance(e, str)])
def test_every_shared_export_writes_back_at_its_record_frames(name, tmp_path):
    """Every readable export, its clips made shots (their media resolved to stand-in camera files), dubbed by stand-in
    renders and written back: in .otio the dub clips sit exactly at the shots' record frames; in FCP7 XML exactly where
    the originals sit after the same round trip (or a clear refusal naming what the writer cannot hold); in the EDL
    at the record timecodes (cuts without dissolves)."""
    from otio_adapters import add_dub_track, write_dubbed

    from edidub_engine.shot import RenderedClip
    from edidub_engine.timebase import frame_to_timecode

    f = read_timeline(_file(name))
    sl = shots_from_timeline(f.timeline, dub_track=None, resolve_media=_camera)
    shots = [s for s in sl.shots if s.record["track_index"] == sl.shots[0].record["track_index"]] if sl.shots else []
    if not shots:
        pytest.skip(f"{name}: no clip becomes a shot even with its media resolved")
    rendered = [RenderedClip(shot_id=s.shot_id, path=f"/renders/{s.shot_id}.mov", start_frame=0, end_frame=s.source.frame_count,
                             rate=s.source.rate, timecode=frame_to_timecode(s.source.start_frame, s.source.rate), frames_edited=1,
                             record=s.record, qc={"source": {"start_frame": s.source.start_frame, "end_frame": s.source.end_frame}})
                for s in shots]
    out = add_dub_track(f.timeline, rendered, language="fr")
    want = sorted((max(s.record["start_frame"], s.record["cut_start_frame"]), min(s.record["end_frame"], s.record["cut_end_frame"]))
                  for s in shots)
    assert _placed(out, "EdiDub FR") == want
    write_dubbed(out, tmp_path / "cut.otio")
    assert _placed(otio.adapters.read_from_file(str(tmp_path / "cut.otio")), "EdiDub FR") == want
    try:
        write_dubbed(out, tmp_path / "cut.xml")
    except InvalidArgumentError as err:
        assert re.search(r"cannot write \d+ (generator clips|image sequences)", err.message), err.message
    else:
        xml = read_timeline(tmp_path / "cut.xml").timeline
        picture = next(t for t in xml.video_tracks() if t.name != "EdiDub FR")
        assert set(_placed(xml, "EdiDub FR")) <= set(_placed(xml, picture.name)) and len(_placed(xml, "EdiDub FR")) == len(want)
    write_dubbed(out, tmp_path / "cut.edl")
    track = next(t for t in out.tracks if t.name == "EdiDub FR")
    if not any(isinstance(i, otio.schema.Transition) for i in track):
        back = read_timeline(tmp_path / "cut.edl", rate=sl.rate).timeline
        start = round(back.global_start_time.value) if back.global_start_time else 0
        assert sorted(start + round(c.range_in_parent().start_time.value) for c in back.tracks[0].find_clips()) == [a for a, _ in want]
