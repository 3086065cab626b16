"""What submit refuses and how a refusal names the shot: the promises of docs/protocol.md a third-party client relies on
(issue 33), on real sockets through the raw ``submit`` request (the Client checks a dict before it sends it)."""

from __future__ import annotations

import copy

import pytest

from edidub_engine.client import Client
from edidub_engine.errors import EdidubError
from edidub_engine.shot import MAX_FRAME, MAX_SECONDS

from daemon_helpers import shot


def _refusal(client: Client, shots: list[dict]) -> EdidubError:
    with pytest.raises(EdidubError) as err:
        client.request("submit", {"shots": shots})
    return err.value


def test_every_per_shot_refusal_names_the_shots_index_and_id(client, clip, audio, out_dir):
    """Before, a refusal of a field or an option carried `index` only; the media check alone added `shot_id`."""
    good = shot(clip, audio, out_dir, shot_id="good")
    bad = shot(clip, audio, out_dir, shot_id="bad")
    cases = {
        "unknown option": ("options", {"guidence_scale": 5}, "INVALID_ARG"),
        "option out of range": ("options", {"guidance_scale": 99}, "INVALID_ARG"),
        "unknown field": ("colour", "red", "INVALID_ARG"),
        "rate that is no rate": ("source", dict(bad["source"], rate="fast"), "INVALID_ARG"),
        "end_frame over the cap": ("source", dict(bad["source"], end_frame=MAX_FRAME + 1), "INVALID_ARG"),
        "a dub line a day long": ("dub_audio", [{"path": str(audio), "duration_s": MAX_SECONDS + 1}], "INVALID_ARG"),
        "missing source": ("source", dict(bad["source"], path=str(out_dir / "missing.mpg")), "NOT_FOUND"),
        "past the media's end": ("source", dict(bad["source"], start_frame=70, end_frame=500), "INVALID_ARG"),
        "model not served": ("options", {"model": "nope"}, "MODEL_MISSING"),
    }
    for name, (field, value, code) in cases.items():
        refused = _refusal(client, [good, dict(copy.deepcopy(bad), **{field: value})])
        assert (refused.code, refused.details.get("index"), refused.details.get("shot_id")) == (code, 1, "bad"), (name, refused)
    nameless = _refusal(client, [good, dict(bad, shot_id=7)])
    assert (nameless.details["index"], nameless.details["shot_id"]) == (1, None)  # no readable id: null, never absent
    assert client.list_jobs() == []

