"""Typed rates: editors write 29.97, 23.976 and 59.94; each is read as the NTSC rate it means, by the 0.05 % rule,
and said once (issue 33: a shot list, a ShotRequest or `--rate 29.97` was refused as "ambiguous")."""

from __future__ import annotations

import logging
from fractions import Fraction

import pytest

from edidub_engine import timebase
from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import ShotRequest, parse_rate

NTSC = {"29.97": Fraction(30000, 1001), "23.976": Fraction(24000, 1001), "23.98": Fraction(24000, 1001),
        "59.94": Fraction(60000, 1001), "47.952": Fraction(48000, 1001), "119.88": Fraction(120000, 1001)}


@pytest.fixture(autouse=True)
def _fresh_notices(monkeypatch):
    monkeypatch.setattr(timebase, "_said", set(), raising=False)


@pytest.mark.parametrize("text, rate", NTSC.items())
def test_ntsc_decimals_are_the_ntsc_rates(text, rate):
    assert parse_rate(text, where="x") == rate
    assert parse_rate(float(text), where="x") == rate  # a JSON number too


def test_other_spellings_keep_their_exact_value():
    assert parse_rate("30000/1001", where="x") == Fraction(30000, 1001)
    assert parse_rate([24000, 1001], where="x") == Fraction(24000, 1001)
    assert parse_rate(25, where="x") == 25 and parse_rate("25.0", where="x") == 25 and parse_rate(25.0, where="x") == 25
    assert parse_rate("12.5", where="x") == Fraction(25, 2)
    assert parse_rate("2997/100", where="x") == Fraction(2997, 100)  # a rational is taken as written
    assert parse_rate("29.9", where="x") == Fraction(299, 10)  # 0.23 % off 29.97: not the NTSC rate


@pytest.mark.parametrize("bad", [True, "abc", "29,97", "-29.97", "0.0", 0, float("inf"), float("nan"), [1], "30000/0"])
def test_what_is_no_rate_is_refused_with_what_to_write(bad):
    with pytest.raises(InvalidArgumentError) as err:
        parse_rate(bad, where="shot 'sh1' source")
    assert str(err.value.message).startswith("shot 'sh1' source: rate") and "29.97" in err.value.hint


def test_the_ntsc_reading_is_said_once_per_spelling(caplog):
    caplog.set_level(logging.WARNING, logger="edidub.timebase")
    for where in ("shot 'a' source", "shot 'b' source", "shot 'c' source"):
        parse_rate("29.97", where=where)
    parse_rate("23.976", where="--rate")
    parse_rate("30000/1001", where="shot 'd' source")
    assert [r.getMessage() for r in caplog.records] == [
        "shot 'a' source: frame rate 29.97 read as the NTSC rate 30000/1001 (29.97003 fps)",
        "--rate: frame rate 23.976 read as the NTSC rate 24000/1001 (23.97602 fps)",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records)  # a notice: nothing was refused


def test_a_shot_request_and_a_csv_shot_list_take_decimal_rates():
    from otio_adapters.shotlist_io import from_csv

    request = ShotRequest.from_dict({"shot_id": "sh1", "source": {"path": "/a.mov", "start_frame": 0, "end_frame": 10, "rate": "29.97"},
                                     "dub_audio": [{"path": "/a.wav"}]})
    assert request.source.rate == Fraction(30000, 1001) and request.to_dict()["source"]["rate"] == "30000/1001"
    csv = ("shot_id,source_path,source_start_frame,source_end_frame,source_rate,record_rate,dub_path\n"
           "sh1,/a.mov,0,10,23.976,23.976,/a.wav\n")
    listed = from_csv(csv)
    assert listed.rate == Fraction(24000, 1001) and listed.shots[0].source.rate == Fraction(24000, 1001)


def test_the_wire_schema_takes_what_parse_rate_takes():
    """docs/schema/ is what a client in another language checks against: it must not refuse a rate the daemon reads."""
    import json

    from edidub_engine.daemon.schema import SCHEMA_DIR, SchemaViolation, validate

    schema = json.loads((SCHEMA_DIR / "submit_request.json").read_text(encoding="utf-8"))
    rate = {"$ref": "#/$defs/Rate", "$defs": schema["$defs"]}
    for good in ("29.97", 23.976, "30000/1001", 25, [24000, 1001], "12.5"):
        parse_rate(good, where="x")
        validate(good, rate)
    for bad in ("29,97", "-29.97", 0, "abc"):
        with pytest.raises(SchemaViolation):
            validate(bad, rate)
