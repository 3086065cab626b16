"""Hostile input, measured: >= 10 000 malformed or hostile messages; the daemon answers each and stays up.

Categories (hypothesis, one shared daemon): random bytes; random msgpack values;
envelopes with wrong types, huge and odd header fields and unknown versions/ops;
known request types with fuzzed content (wrong types, huge strings and lists);
submits whose paths leave the media roots (outside paths, ``..``, symlinks out of
a root, NUL bytes, relative paths).  Every single-frame message must get a
well-formed reply (status ok/error with a known code) — path attacks must never
be accepted — and a good request must be served afterwards.  Framing the daemon
cannot answer (extra frames, over the size limit) is dropped, also without harm.
"""

from __future__ import annotations

import time
from pathlib import Path

import msgpack
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from edidub_engine.client import Client
from edidub_engine.daemon.protocol import PROTOCOL_VERSION
from edidub_engine.daemon.protocol import ACTIONS, ErrorCode

from daemon_helpers import shot
from runners import CopyRunner
from daemon_wire import RawDealer, check, envelope

EXAMPLES = 10_000
_CODES = {c.value for c in ErrorCode}
_REQUEST_TYPES = [f"{a}_request" for a in ACTIONS if a != "shutdown"]  # a local shutdown is legitimately obeyed

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64 - 1), st.floats(allow_nan=True),
    st.text(max_size=40), st.binary(max_size=40),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=12), inner, max_size=6)), max_leaves=25)
_huge = st.sampled_from(["x" * 200_000, "é" * 50_000, list(range(20_000)), {"k" * 5000: 1}, b"\xff" * 100_000, 2**64 - 1, -(2**63)])


def _pack(value) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@st.composite
def raw_bytes(draw):
    return draw(st.binary(min_size=0, max_size=512))


@st.composite
def random_msgpack(draw):
    return _pack(draw(_values))


@st.composite
def broken_envelopes(draw):
    msg = envelope(draw(st.sampled_from(_REQUEST_TYPES + ["", "hello", "x" * 100, "submit_reply", "error_reply"])), {})
    part = draw(st.sampled_from(["header", "parent_header", "content", "header.msg_id", "header.msg_type", "header.protocol", "header.session", "header.date", "drop"]))
    value = draw(st.one_of(_values, _huge, st.sampled_from(["2.0", "0.1", "", "1", "99.99", "1.0.0.0"])))
    if part == "drop":
        del msg[draw(st.sampled_from(["header", "parent_header", "content"]))]
    elif "." in part:
        outer, inner = part.split(".")
        msg[outer][inner] = value
    else:
        msg[part] = value
    return _pack(msg)


@st.composite
def fuzzed_content(draw):
    msg_type = draw(st.sampled_from(_REQUEST_TYPES))
    keys = ["client", "shots", "priority", "job_id", "states", "limit", "extra"]
    content = draw(st.dictionaries(st.sampled_from(keys), st.one_of(_values, _huge), max_size=4))
    return _pack(envelope(msg_type, content))


def path_attacks(clip: Path, audio: Path, out_dir: Path, escape: Path, link_file: Path):
    tricky = st.sampled_from([
        "/etc/passwd", "/etc", "/", f"{out_dir}/../../etc/passwd", f"{out_dir}/../outside/secret.mov", f"{clip.parent}/../../etc/hostname",
        str(escape), f"{escape}/secret.mov", str(link_file), f"{out_dir}/./../outside", "relative/clip.mpg", "../clip.mpg", "",
        f"{clip}\x00.mov", "/" + "a/" * 1500, str(out_dir) + "/" + "x" * 300, "~root/clip.mov", f"{out_dir}//..//..//",
    ])
    field = st.sampled_from(["source", "audio", "output", "name", "record"])

    @st.composite
    def attack(draw):
        bad, where = draw(tricky), draw(field)
        suffix = draw(st.sampled_from(["", "/", "/.", "/..", "/../outside/secret.mov"]))
        bad = bad + suffix if where != "name" else bad
        request = shot(clip, audio, out_dir, end=1)
        if where == "source":
            request["source"]["path"] = bad
        elif where == "audio":
            request["dub_audio"][0]["path"] = bad
        elif where == "output":
            request["output"]["dir"] = bad
        elif where == "record":  # what JSON (the store) cannot hold
            request["record"] = {"x": draw(st.sampled_from([b"\x00", float("nan"), msgpack.ExtType(5, b"x"), [float("inf")]]))}
        else:
            request["output"]["name"] = draw(st.sampled_from(["../evil", "a/b", "/abs", ".hidden", "..", "x" * 300, "ok\x00no"]))
        return ("attack", _pack(envelope("submit_request", {"shots": [request], "priority": "interactive"})))

    return attack()


def test_ten_thousand_hostile_messages(make_daemon, clip, audio, out_dir, tmp_path):
    daemon = make_daemon(CopyRunner())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.mov").write_bytes(b"not yours")
    escape = out_dir / "escape"
    escape.symlink_to(outside)
    link_file = out_dir / "secret_link.mov"
    link_file.symlink_to(outside / "secret.mov")
    raw = RawDealer(daemon.request_endpoint, timeout_s=10)
    counts = {"messages": 0, "errors": 0, "ok": 0, "attacks_refused": 0}
    tagged = lambda s, tag: s.map(lambda b: (tag, b))  # noqa: E731
    messages = st.one_of(
        tagged(raw_bytes(), "bytes"),
        tagged(random_msgpack(), "msgpack"),
        tagged(broken_envelopes(), "envelope"),
        tagged(fuzzed_content(), "content"),
        path_attacks(clip, audio, out_dir, escape, link_file),
    )

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(messages)
    def one(tagged_message):
        tag, data = tagged_message
        reply = raw.send_bytes(data)
        counts["messages"] += 1
        assert reply is not None, f"no reply to a {tag} message"
        check(reply)  # every reply matches its schema
        status = reply["content"]["status"]
        if status == "error":
            counts["errors"] += 1
            assert reply["content"]["code"] in _CODES
        else:
            counts["ok"] += 1
            assert tag in ("content", "envelope"), f"a {tag} message was accepted"
            assert reply["header"]["msg_type"] != "submit_reply", "a fuzzed submit was queued"
        if tag == "attack":
            assert reply["content"]["code"] in ("FORBIDDEN", "INVALID_ARG", "NOT_FOUND"), reply["content"]
            counts["attacks_refused"] += 1

    started = time.monotonic()
    try:
        one()
    finally:
        raw.close()
    elapsed = time.monotonic() - started
    print(f"\nhostile: {counts} in {elapsed:.1f} s")
    assert counts["messages"] >= EXAMPLES
    assert not list(outside.glob("*.mkv")) and (outside / "secret.mov").read_bytes() == b"not yours"
    # still up, and still serving
    with Client(daemon.request_endpoint, timeout_s=10) as client:
        (job_id,) = client.submit(shot(clip, audio, out_dir, end=2))
        assert client.wait(job_id, timeout_s=60).end_frame == 2
        assert all(j.state.value == "done" for j in client.list_jobs())


def test_unanswerable_framing_is_dropped_without_harm(make_daemon, clip, audio, out_dir):
    daemon = make_daemon(CopyRunner(), max_message_bytes=64 * 1024)
    raw = RawDealer(daemon.request_endpoint, timeout_s=0.3)
    try:
        good = _pack(envelope("hello_request", {}))
        assert raw.send_bytes(b"x", good) is None  # a non-empty delimiter: not a request
        assert raw.send_bytes(b"", b"", good) is None  # too many frames
        assert raw.send_bytes(b"\x00" * (128 * 1024)) is None  # over ZMQ_MAXMSGSIZE: libzmq drops the connection
        assert daemon.dropped >= 2
    finally:
        raw.close()
    with Client(daemon.request_endpoint, timeout_s=10) as client:
        assert client.hello().protocol == PROTOCOL_VERSION
