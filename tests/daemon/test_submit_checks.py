"""What submit refuses and how a refusal names the shot: the promises of docs/protocol.md a third-party client relies on
(issue 33 items 5-7), on real sockets through the raw ``submit`` request (the Client checks a dict before it sends it)."""

from __future__ import annotations

import copy
import re
import threading
import time

import pytest

from edidub_engine.client import Client
from edidub_engine.daemon.protocol import MAX_MESSAGE_BYTES, MAX_SHOTS_PER_SUBMIT, MAX_TIMELINE_CHARS
from edidub_engine.daemon.schema import SchemaViolation
from edidub_engine.daemon.server import Server
from edidub_engine.errors import EdidubError
from edidub_engine.shot import MAX_FRAME, MAX_SECONDS, MAX_STEPS, MIN_ADAPT_TAKE_FRAMES

from daemon_helpers import REPO, settings, shot
from daemon_wire import check, envelope
from runners import CopyRunner


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


def test_a_missing_model_is_refused_before_and_after_the_worker_is_ready(tmp_path, out_dir, clip, audio):
    """The server knows what its runner serves when it starts (the catalogue): a worker still loading changes nothing."""
    loading, release = threading.Event(), threading.Event()

    def slow_factory(device):
        loading.set()
        release.wait(60)
        return CopyRunner()

    catalogue = [{"name": "copy-runner", "present": True, "version": "test", "details": {"default": True}}]
    server = Server(settings(tmp_path, out_dir), runner_factory=slow_factory, catalogue=lambda: catalogue)
    server.start()
    try:
        with Client(server.request_endpoint, timeout_s=10) as client:
            assert loading.wait(10)
            hello = client.hello()
            assert not hello.workers[0]["ready"] and [m.name for m in hello.models] == ["copy-runner"]
            refused = _refusal(client, [dict(shot(clip, audio, out_dir, shot_id="typo"), options={"model": "nope"})])
            assert refused.code == "MODEL_MISSING" and refused.details == {"index": 0, "shot_id": "typo"}
            assert "copy-runner" in refused.hint
            (queued,) = client.submit(dict(shot(clip, audio, out_dir), options={"model": "copy-runner"}))
            release.set()
            deadline = time.monotonic() + 30
            while not client.hello().workers[0]["ready"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert _refusal(client, [dict(shot(clip, audio, out_dir), options={"model": "nope"})]).code == "MODEL_MISSING"
            assert client.wait(queued, timeout_s=60).model["name"] == "copy-runner"
    finally:
        release.set()
        server.stop()


def test_every_bound_the_daemon_enforces_is_in_the_document_and_the_schema(tmp_path, clip, audio):
    """Issue 33 item 6: end_frame above 864 000 000 was refused without the document saying so."""
    text = re.sub(r"(?<=\d)[ ,](?=\d{3}\b)", "", (REPO / "docs" / "protocol.md").read_text(encoding="utf-8"))
    limits = text[text.index("## Limits"):]
    for value in (MAX_FRAME, int(MAX_SECONDS), MAX_STEPS, MIN_ADAPT_TAKE_FRAMES, MAX_SHOTS_PER_SUBMIT, 4096, 200, 128):
        assert re.search(rf"\b{value}\b", limits), f"{value} is not in the Limits section"
    assert "8 MiB" in limits and "7 MiB" in limits and MAX_MESSAGE_BYTES == 8 << 20 and MAX_TIMELINE_CHARS == 7 << 20
    over = shot(clip, audio, tmp_path)
    over["source"]["end_frame"] = MAX_FRAME + 1
    with pytest.raises(SchemaViolation, match="end_frame"):
        check(envelope("submit_request", {"shots": [over]}))
    over["source"]["end_frame"] = MAX_FRAME
    check(envelope("submit_request", {"shots": [over]}))
