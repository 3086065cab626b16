"""The EdiDub shot-list adapter plugin (JSON and CSV), loaded from its manifest."""

from __future__ import annotations

from pathlib import Path

import opentimelineio as otio
import pytest

import otio_adapters
from otio_adapters import from_csv, from_json, shots_from_timeline, to_csv, to_json

MANIFEST = Path(otio_adapters.__file__).with_name("plugin_manifest.json")


@pytest.fixture(scope="module")
def adapters():
    manifest = otio.plugins.manifest.manifest_from_file(str(MANIFEST))
    return {a.name: a for a in manifest.adapters}


def _shots(build):
    tl = build.timeline(
        "ep101", 24, 86400,
        [build.clip("A", "/media/a.mov", 86400 + 100, 100, 24), build.dissolve(6, 6, 24),
         build.clip("B", "/media/b.mov", 86400 + 300, 100, 24), build.gap(10, 24), build.clip("C", "/media/c.mov", 86400, 50, 24)],
        [build.gap(80, 24), build.clip("l1", "/d/l1.wav", 0, 40, 24, avail=(0, 500)),
         build.gap(100, 24), build.clip("l2", "/d/l2.wav", 12, 10, 24, avail=(0, 500))],
    )
    return shots_from_timeline(tl, dub_track="FR dialogue")


def _key(sl):
    return [(s.shot_id, s.source, s.dub_audio, s.output, s.options, s.record) for s in sl.shots]


def test_manifest_names_both_adapters(adapters):
    assert set(adapters) == {"edidub_json", "edidub_csv"}
    # suffixes of our own: .json and .csv belong to every OTIO user in the environment
    assert list(adapters["edidub_json"].suffixes) == ["edidub"] and list(adapters["edidub_csv"].suffixes) == []


def test_unknown_adapter_arguments_are_refused(adapters, build):
    tl = otio.adapters.read_from_string(otio.adapters.write_to_string(_editorial(build), "otio_json"), "otio_json")
    with pytest.raises(TypeError, match="dub_trak"):
        adapters["edidub_json"].write_to_string(tl, dub_trak="FR dialogue")  # a typo is an error, not a silent default


@pytest.mark.parametrize("name,dump", [("edidub_json", to_json), ("edidub_csv", to_csv)])
def test_read_gives_a_timeline_and_write_gives_the_same_shots(adapters, build, tmp_path, name, dump):
    sl = _shots(build)
    assert len(sl.shots) == 3  # A and B overlap through their dissolve
    path = tmp_path / ("shots.json" if name == "edidub_json" else "shots.csv")
    path.write_text(dump(sl), encoding="utf-8")
    tl = adapters[name].read_from_file(str(path))
    assert isinstance(tl, otio.schema.Timeline)
    assert [t.name for t in tl.video_tracks()] == ["Shots", "Shots 2"]  # overlapping shots on a second lane
    assert [t.name for t in tl.audio_tracks()] == ["Dub"]
    assert len(list(tl.find_clips())) == 3 + 2
    back = (from_json if name == "edidub_json" else from_csv)(adapters[name].write_to_string(tl))
    assert _key(back) == _key(sl)


def test_write_to_string_on_an_editorial_timeline_needs_the_dub_track(adapters, build):
    sl = _shots(build)
    tl = otio.adapters.read_from_string(otio.adapters.write_to_string(_editorial(build), "otio_json"), "otio_json")
    text = adapters["edidub_json"].write_to_string(tl, dub_track="FR dialogue")
    assert _key(from_json(text)) == _key(sl)
    from edidub_engine.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="dub_track"):
        adapters["edidub_json"].write_to_string(tl)


def _editorial(build):
    return build.timeline(
        "ep101", 24, 86400,
        [build.clip("A", "/media/a.mov", 86400 + 100, 100, 24), build.dissolve(6, 6, 24),
         build.clip("B", "/media/b.mov", 86400 + 300, 100, 24), build.gap(10, 24), build.clip("C", "/media/c.mov", 86400, 50, 24)],
        [build.gap(80, 24), build.clip("l1", "/d/l1.wav", 0, 40, 24, avail=(0, 500)),
         build.gap(100, 24), build.clip("l2", "/d/l2.wav", 12, 10, 24, avail=(0, 500))],
    )


def test_picture_only_shot_list_round_trips(build, adapters, tmp_path):
    sl = shots_from_timeline(_editorial(build), dub_track=None)
    assert all(s.dub_audio == () for s in sl.shots)
    assert _key(from_json(to_json(sl))) == _key(sl)
    assert _key(from_csv(to_csv(sl))) == _key(sl)


def test_a_shot_lists_strength_column_sets_each_shots_edit_strength_in_a_batch(build):
    """The supervisor's per-shot override: each row's `strength` (a shot list spells out every option) goes into that
    shot's request when the list is batched, over the batch's own."""
    import csv
    import io

    from edidub_engine.shot import DubOptions
    from otio_adapters.batch import plan_batch
    from otio_adapters.shotlist_io import to_timeline

    rows = list(csv.DictReader(io.StringIO(to_csv(_shots(build)))))
    assert len(rows) >= 2
    rows[0]["strength"] = "0.7"
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    plan = plan_batch(to_timeline(from_csv(text.getvalue())), dub_track="Dub", language="FR", output_dir="/out",
                      options=DubOptions(strength=0.9), check_media_exists=False)
    strengths = {s.shot_id: s.options.strength for s in plan.shot_list.shots}
    assert strengths[rows[0]["shot_id"]] == 0.7 and strengths[rows[1]["shot_id"]] == 1.0


def test_a_track_per_face_gives_a_two_shot_its_lines_and_a_shot_list_keeps_them(build):
    """The supervisor's rule, written once for the cut: each face's dub lines on its own track (issue 32). A clip with
    speech on both tracks is a two-shot with a line per face; one with speech on one track only is a one-face shot of
    that face. The shot list (JSON and CSV) keeps the faces and their lines through OTIO and back into a batch."""
    import opentimelineio as otio

    from edidub_engine.shot import DubOptions
    from otio_adapters.batch import plan_batch
    from otio_adapters.shotlist_io import to_timeline

    tl = build.timeline("interview", 25, 90000,
                        [build.clip("TWO", "/media/two.mov", 86400, 100, 25), build.clip("ONE", "/media/one.mov", 86600, 50, 25)],
                        [build.clip("anna1", "/d/anna.wav", 0, 60, 25, avail=(0, 500)), build.gap(90, 25)], audio_name="FR anna")
    bob = otio.schema.Track(name="FR bob", kind=otio.schema.TrackKind.Audio)
    bob.append(build.gap(30, 25))
    bob.append(build.clip("bob1", "/d/bob.wav", 0, 50, 25, avail=(0, 500)))
    bob.append(build.gap(20, 25))
    bob.append(build.clip("bob2", "/d/bob.wav", 100, 40, 25, avail=(0, 500)))
    tl.tracks.append(bob)
    shots = shots_from_timeline(tl, dub_track=None, line_tracks=[("0", "FR anna"), ("1", "FR bob")], handles=None)
    two, one = shots.shots
    assert [(line.face, [s.path for s in line.dub_audio]) for line in two.lines] == [("0", ["/d/anna.wav"]), ("1", ["/d/bob.wav"])]
    assert two.dub_audio == () and one.lines == () and one.options.face == "1" and [s.path for s in one.dub_audio] == ["/d/bob.wav"]
    for dump, load in ((to_json, from_json), (to_csv, from_csv)):
        back = load(dump(shots))
        assert [(s.shot_id, s.lines, s.dub_audio, str(s.options.face)) for s in back.shots] == \
               [(s.shot_id, s.lines, s.dub_audio, str(s.options.face)) for s in shots.shots]
        plan = plan_batch(to_timeline(back), dub_track="Dub", language="FR", output_dir="/out", options=DubOptions(), check_media_exists=False)
        assert [s.lines for s in plan.shot_list.shots] == [s.lines for s in shots.shots]
