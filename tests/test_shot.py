"""ShotRequest / RenderedClip: the contracts every caller shares round-trip and reject bad input clearly."""

from __future__ import annotations

import json
from fractions import Fraction

import msgpack
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import PassthroughRange, RenderedClip, ShotRequest, parse_rate

GOOD = {
    "shot_id": "sc12_sh040",
    "source": {"path": "/media/A001.mov", "start_frame": 100, "end_frame": 220, "rate": "24000/1001"},
    "dub_audio": [{"path": "/media/fr/line12.wav", "start_s": 1.5, "duration_s": 4.2}],
    "record": {"timeline": "cut v3", "track": "V1", "start_frame": 86500, "rate": "24000/1001"},
    "output": {"dir": "/renders", "codec": "h264"},
    "options": {"steps": 20, "guidance_scale": 4.0, "seed": 7, "face": 1},
}


def test_request_round_trips_through_msgpack_and_json():
    request = ShotRequest.from_dict(GOOD)
    assert request.source.rate == Fraction(24000, 1001)
    assert request.options.face == 1 and request.output.codec == "h264"
    for codec in (msgpack.packb, json.dumps):
        wire = request.to_dict()
        back = ShotRequest.from_dict(msgpack.unpackb(codec(wire)) if codec is msgpack.packb else json.loads(codec(wire)))
        assert back == request


def test_single_audio_map_is_accepted_as_one_segment():
    data = dict(GOOD, dub_audio={"path": "/a.wav"})
    assert len(ShotRequest.from_dict(data).dub_audio) == 1


@pytest.mark.parametrize(
    "patch, needle",
    [
        ({"shot_id": ""}, "shot_id"),
        ({"source": {"path": "/a.mov", "start_frame": 10, "end_frame": 10}}, "not a range"),
        ({"source": {"path": "/a.mov", "start_frame": "1", "end_frame": 10}}, "start_frame"),
        ({"source": {"path": "/a.mov", "start_frame": 0, "end_frame": 10, "rate": "fast"}}, "rate"),
        ({"dub_audio": []}, "dub_audio"),
        ({"dub_audio": [{"path": "/a.wav", "duration_s": -1}]}, "duration_s"),
        ({"output": {"codec": "dnxhr"}}, "dnxhr"),
        ({"options": {"stpes": 3}}, "stpes"),
        ({"options": {"steps": "many"}}, "steps"),
        ({"record": [1, 2]}, "record"),
    ],
)
def test_bad_requests_name_the_shot_and_the_field(patch, needle):
    with pytest.raises(InvalidArgumentError) as err:
        ShotRequest.from_dict(dict(GOOD, **patch))
    assert needle in str(err.value)


def test_rates_are_exact_rationals():
    """Decimals are read as the NTSC rates they mean (tests/test_timebase_rates.py)."""
    assert parse_rate("30000/1001", where="x") == Fraction(30000, 1001)
    assert parse_rate([24000, 1001], where="x") == Fraction(24000, 1001)
    assert parse_rate(25, where="x") == 25
    assert parse_rate("23.976", where="x") == Fraction(24000, 1001)
    for bad in (True, "abc", [1], 0):
        with pytest.raises(InvalidArgumentError):
            parse_rate(bad, where="x")


def test_rendered_clip_round_trips():
    clip = RenderedClip(
        shot_id="s1", path="/r/s1.mov", start_frame=0, end_frame=48, rate=Fraction(25), timecode="01:00:00:00",
        frames_edited=40, frames_passed_through=(PassthroughRange(40, 48, "no_face"),), record={"track": "V1"},
    )
    assert RenderedClip.from_dict(msgpack.unpackb(msgpack.packb(clip.to_dict()))) == clip


_BASE = {"shot_id": "s", "source": {"path": "/x.mov", "start_frame": 0, "end_frame": 10}, "dub_audio": [{"path": "/a.wav"}]}


@pytest.mark.parametrize("key, value, needle", [
    ("options", {"steps": 0}, "steps is 0"),
    ("options", {"steps": 10**9}, "steps is 1000000000"),
    ("options", {"inversion_steps": -3}, "inversion_steps is -3"),
    ("options", {"face": "zzz"}, "not a face selector"),
    ("options", {"guidance_scale": float("nan")}, "guidance_scale is nan"),
    ("options", {"guidance_scale": float("inf")}, "guidance_scale is inf"),
    ("options", {"strength": 5}, "strength is 5"),
    ("options", {"seed": 2**64 - 1}, "seed is"),
    ("options", {"strength": None}, "strength must not be null"),
    ("dub_audio", [{"path": "/a.wav", "offset_s": 1e300}], "offset_s is 1e"),
    ("dub_audio", [{"path": "/a.wav", "duration_s": float("nan")}], "duration_s is nan"),
    ("output", {"name": ""}, "is not a file name"),
    ("output", {"name": "../elsewhere"}, "is not a file name"),
    ("source", {"path": "/x.mov", "start_frame": 0, "end_frame": 2**63}, "are not a range"),
])
def test_every_field_is_range_checked_before_a_job_exists(key, value, needle):
    """Issue 18: these were accepted at submit and failed (or worse, ran) in the worker."""
    with pytest.raises(InvalidArgumentError, match=needle):
        ShotRequest.from_dict({**_BASE, key: value})


def test_sane_options_pass():
    shot = ShotRequest.from_dict({**_BASE, "options": {"steps": 50, "guidance_scale": 5, "seed": 2**63 - 1, "face": "640, 360"}})
    assert shot.options.steps == 50 and shot.options.face == "640, 360"
    assert ShotRequest.from_dict({**_BASE, "options": {"face": 2}}).options.face == 2


@pytest.mark.parametrize("where, patch", [
    ("top level", {"shot_idd": "typo"}),
    ("source", {"source": {**_BASE["source"], "start": 3}}),
    ("options", {"options": {"stpes": 10}}),
    ("output", {"output": {"codc": "h264"}}),
    ("dub_audio", {"dub_audio": [{"path": "/a.wav", "offset": 1.0}]}),
])
def test_unknown_fields_are_refused_in_every_map(where, patch):
    with pytest.raises(InvalidArgumentError, match="unknown field"):
        ShotRequest.from_dict({**_BASE, **patch})
