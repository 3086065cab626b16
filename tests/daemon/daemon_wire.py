"""Raw wire helpers for the tests: a DEALER that sends exactly the bytes it is given, and the checked-in schemas."""

from __future__ import annotations

import json
import uuid

import msgpack
import zmq

from edidub_engine.daemon.protocol import PROTOCOL_VERSION
from edidub_engine.daemon.schema import SCHEMA_DIR, validate


def envelope(msg_type: str, content, *, protocol: str = PROTOCOL_VERSION) -> dict:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "protocol": protocol, "session": "raw-test", "date": "2026-01-01T00:00:00Z"},
        "parent_header": {},
        "content": content,
    }


def schema(msg_type: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{msg_type}.json").read_text())


def check(message: dict) -> None:
    """Validate a message (as a plain map) against the checked-in schema of its msg_type."""
    validate(message, schema(message["header"]["msg_type"]))


class RawDealer:
    def __init__(self, endpoint: str, timeout_s: float = 5.0):
        self.context = zmq.Context()
        self.sock = self.context.socket(zmq.DEALER)
        self.sock.linger = 0
        self.sock.connect(endpoint)
        self.timeout_ms = int(timeout_s * 1000)

    def send_bytes(self, *frames: bytes) -> dict | None:
        """Send frames; return the decoded reply map, or None when none came within the timeout."""
        self.sock.send_multipart(list(frames))
        if not self.sock.poll(self.timeout_ms):
            return None
        return msgpack.unpackb(self.sock.recv_multipart()[-1], raw=False)

    def call(self, msg_type: str, content, **kw) -> dict:
        reply = self.send_bytes(msgpack.packb(envelope(msg_type, content, **kw), use_bin_type=True))
        assert reply is not None, f"no reply to {msg_type}"
        return reply

    def close(self) -> None:
        self.sock.close()
        self.context.term()
