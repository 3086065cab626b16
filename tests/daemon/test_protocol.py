"""Wire protocol v1: every message type round-trips over real sockets and matches its checked-in schema."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from edidub_engine.daemon import schema as schema_module
from edidub_engine.daemon.paths import CODEC_EXTENSIONS
from edidub_engine.daemon.protocol import ACTIONS, PROTOCOL_VERSION, ErrorCode, error_from_wire
from edidub_engine.errors import MediaNotFoundError, NoFaceError

from daemon_helpers import REPO, shot
from daemon_wire import RawDealer, check, envelope


@pytest.fixture
def raw(daemon):
    dealer = RawDealer(daemon.request_endpoint)
    yield dealer
    dealer.close()


def test_every_message_type_round_trips_and_matches_its_schema(daemon, raw, clip, audio, out_dir):
    sub_context = zmq.Context()
    sub = sub_context.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"job.")
    sub.connect(daemon.events_endpoint)
    time.sleep(0.2)  # let the subscription reach the PUB
    seen: set[str] = set()

    def call(msg_type: str, content: dict) -> dict:
        request = envelope(msg_type, content)
        check(request)
        reply = raw.send_bytes(msgpack.packb(request, use_bin_type=True))
        check(reply)
        assert reply["parent_header"]["msg_id"] == request["header"]["msg_id"]
        assert reply["header"]["protocol"] == PROTOCOL_VERSION
        seen.add(msg_type)
        seen.add(reply["header"]["msg_type"])
        return reply

    hello = call("hello_request", {"client": "test"})
    assert hello["header"]["msg_type"] == "hello_reply" and hello["content"]["status"] == "ok"
    assert hello["content"]["models"][0]["name"] == "copy-runner"
    submitted = call("submit_request", {"shots": [shot(clip, audio, out_dir, end=3)], "priority": "interactive"})
    (job_id,) = submitted["content"]["job_ids"]
    for _ in range(200):
        status = call("status_request", {"job_id": job_id})
        if status["content"]["job"]["state"] == "done":
            break
        time.sleep(0.05)
    assert status["content"]["job"]["frames_done"] == 3
    result = call("result_request", {"job_id": job_id})
    call("submit_timeline_request", {"timeline": "{}", "dub_track": "A1"})
    assert result["content"]["clip"]["end_frame"] == 3 and result["content"]["clip"]["record"]["track"] == "V2"
    listed = call("list_jobs_request", {"states": ["done"], "limit": 5})
    assert [j["job_id"] for j in listed["content"]["jobs"]] == [job_id]
    cancelled = call("cancel_request", {"job_id": job_id})
    assert cancelled["content"]["state"] == "done"  # too late to cancel: unchanged
    call("models_request", {})
    adapt = call("adapt_request", {"name": "anna", "clips": [{"path": str(clip)}], "steps": 1})
    assert adapt["content"]["status"] == "error" and "--adapted-dir" in adapt["content"]["details"]["hint"]  # a daemon without a folder for them
    missing = call("status_request", {"job_id": "nope"})
    assert missing["content"]["code"] == "NOT_FOUND"
    unknown = raw.call("frobnicate_request", {})
    check(unknown)
    assert unknown["header"]["msg_type"] == "error_reply" and unknown["content"]["code"] == "UNKNOWN_MSG_TYPE"
    seen.add("error_reply")

    events = []
    while sub.poll(500):
        topic, data = sub.recv_multipart()
        event = msgpack.unpackb(data, raw=False)
        check(event)
        assert topic == f"job.{job_id}".encode()
        events.append(event["content"]["event"])
    sub.close()
    sub_context.term()
    assert events[0] == "queued" and events[-1] == "done" and "progress" in events
    seen.add("job_event")

    shutdown = call("shutdown_request", {})
    assert shutdown["content"]["status"] == "ok"
    assert daemon.wait(15), "the daemon did not stop after shutdown_request"
    expected = {f"{a}_{kind}" for a in ACTIONS for kind in ("request", "reply")} | {"error_reply", "job_event"}
    assert seen == expected


def test_unknown_protocol_version_gets_unsupported_version(raw):
    for version in ("2.0", "0.9", "banana"):
        reply = raw.call("hello_request", {}, protocol=version)
        check(reply)
        assert reply["content"]["status"] == "error" and reply["content"]["code"] == "UNSUPPORTED_VERSION"
        assert reply["content"]["details"]["supported"] == [PROTOCOL_VERSION]
    ok = raw.call("hello_request", {}, protocol="1.7")  # a newer minor: understood
    assert ok["content"]["status"] == "ok"


def test_unknown_fields_are_refused_in_every_map_of_a_request_and_ignored_in_headers(raw):
    # one rule (docs/protocol.md): a typo never passes silently; the soak benchmark found these three accepted
    for msg_type, content, name in (("list_jobs_request", {"limit": 3, "added_in_1_1": True}, "added_in_1_1"),
                                    ("hello_request", {"client": "x", "shots": []}, "shots"),
                                    ("models_request", {"options": {}}, "options")):
        reply = raw.call(msg_type, content)
        check(reply)
        assert reply["content"]["code"] == "INVALID_ARG" and name in reply["content"]["message"], msg_type
    message = envelope("list_jobs_request", {"limit": 3})
    message["header"]["trace_id"] = "added by a newer client"
    reply = raw.send_bytes(msgpack.packb(message, use_bin_type=True))
    assert reply["content"]["status"] == "ok"


def test_checked_in_schemas_match_the_code():
    stale = schema_module.differences()
    assert not stale, f"docs/schema is stale for {stale}; run `python -m edidub_engine.daemon.schema`"


def test_schema_check_catches_drift(tmp_path):
    schema_module.write(tmp_path)
    assert schema_module.differences(tmp_path) == []
    path = tmp_path / "status_request.json"
    doc = json.loads(path.read_text())
    doc["$defs"]["StatusRequest"]["properties"]["job_id"]["maxLength"] = 7
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (tmp_path / "gone_request.json").write_text("{}\n")
    assert schema_module.differences(tmp_path) == ["gone_request.json", "status_request.json"]
    check = subprocess.run([sys.executable, "-m", "edidub_engine.daemon.schema", "--check", str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 1 and "status_request.json" in check.stderr


def test_wire_errors_become_the_engines_exceptions():
    assert isinstance(error_from_wire({"code": "NO_FACE", "message": "m", "details": {}}), NoFaceError)
    assert isinstance(error_from_wire({"code": "NOT_FOUND", "message": "m", "details": {"path": "/x"}}), MediaNotFoundError)
    odd = error_from_wire({"code": "FROM_THE_FUTURE", "message": "m", "details": {"hint": "h"}})
    assert odd.code == "FROM_THE_FUTURE" and odd.hint == "h"
    assert {c.value for c in ErrorCode} >= {"INVALID_ARG", "NOT_FOUND", "NO_FACE", "UNSUPPORTED_VERSION", "BUSY", "CANCELLED", "MODEL_MISSING", "FORBIDDEN", "INTERNAL"}


def test_client_import_leaves_heavy_modules_out():
    code = "import sys, edidub_engine.client; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'av', 'cv2', 'mediapipe')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_codec_extensions_match_the_media_writer():
    from edidub_engine.media import Codec
    from edidub_engine.shot import SEQUENCE_CODECS

    # every deliverable a request may ask for is a media codec with the same extension, or a folder of image frames
    assert all(Codec(name).extension == ext for name, ext in CODEC_EXTENSIONS.items() if name not in SEQUENCE_CODECS)
    assert all(CODEC_EXTENSIONS[name] == "" for name in SEQUENCE_CODECS)
