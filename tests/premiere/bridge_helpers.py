"""Helpers for the Premiere bridge tests (a plain module: conftest fixtures are not importable)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from plugins.premiere_bridge.server import Bridge, BridgeSettings
from plugins.premiere_bridge.timing import TICKS_PER_SECOND, timebase_from_rate

TIMEBASE = {"23.976": timebase_from_rate(Fraction(24000, 1001)), "29.97": timebase_from_rate(Fraction(30000, 1001))}


def make_ntsc_clip(source: Path, out: Path, rate: Fraction, *, frames: int) -> Path:
    """The first ``frames`` pictures of ``source`` written at ``rate`` (lossless), so the daemon sees real NTSC media."""
    from edidub_engine.media import ClipWriter, iter_frames, probe_video

    info = probe_video(source)
    with ClipWriter(out, width=info.width, height=info.height, rate=rate, codec="ffv1") as writer:
        for _index, rgb in iter_frames(info, 0, frames):
            writer.write(rgb)
        path = writer.close()
    return Path(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BridgeThread:
    """A :class:`Bridge` on 127.0.0.1 (free port) in its own event loop thread."""

    def __init__(self, **settings: Any):
        self.token = settings.pop("token", None) or secrets.token_urlsafe(32)
        self.settings = BridgeSettings(token=self.token, port=0, **settings)
        self.bridge = Bridge(self.settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.url = ""

    def __enter__(self) -> BridgeThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.bridge.start(), self.loop).result(30)
        self.url = self.bridge.url
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.bridge.stop(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Panel:
    """A scripted panel: a sync WebSocket client that speaks the panel's protocol."""

    def __init__(self, url: str, token: str, *, session: str | None = None, jobs: list | None = None):
        self._connection = connect(url, open_timeout=10)
        self.ws = self._connection.__enter__()
        hello = {"op": "hello", "token": token, "client": "test-panel"}
        if session:
            hello["session"] = session
        if jobs:
            hello["jobs"] = jobs
        self.ws.send(json.dumps(hello))
        self.welcome = self.recv()
        self.session = self.welcome.get("session")

    def send(self, message: dict) -> None:
        self.ws.send(json.dumps(message))

    def recv(self, timeout: float = 30) -> dict:
        return json.loads(self.ws.recv(timeout=timeout))

    def wait_for(self, *ops: str, timeout: float = 300, seen: list | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {ops} within {timeout} s (seen: {[m.get('op') for m in (seen or [])]})")
            message = self.recv(timeout=left)
            if seen is not None:
                seen.append(message)
            if message.get("op") in ops:
                return message

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.__exit__(None, None, None)


def dub_message(clip: Path, dub: Path, rate_name: str, *, request_id: str, record: tuple[int, int], source_in: int,
                zero_frames: int, track_index: int = 0, dub_span: tuple[int, int] | None = None, dub_track_index: int = 1) -> dict:
    """What the panel sends for one selected clip: Premiere ticks (TickTime.ticks strings) at the sequence's timebase."""
    tb = TIMEBASE[rate_name]
    a, b = record
    da, db = dub_span or (a - 10, b + 10)
    return {
        "op": "dub", "request_id": request_id,
        "sequence": {"name": f"cut {rate_name}", "timebase": str(tb), "zero_point": str(zero_frames * tb)},
        "dub_track": {"index": dub_track_index, "name": "French", "clips": [
            {"name": dub.name, "path": str(dub), "start": str(da * tb), "end": str(db * tb), "in": "0"},
        ]},
        "shots": [{"item": f"V{track_index + 1}@{a * tb}", "name": clip.name, "path": str(clip), "track_index": track_index,
                   "start": str(a * tb), "end": str(b * tb), "in": str(source_in * tb), "out": str((source_in + b - a) * tb)}],
    }


def take(clip: Path, *, rate: Fraction, source: tuple[int, int], record_start: int, timebase: int, name: str | None = None) -> dict:
    """One selected clip as the panel sends it: source in/out ``source`` (frames at the media's ``rate``) in ticks."""
    a, b = source
    length = round(Fraction(b - a) / rate * TICKS_PER_SECOND / timebase)  # record frames at the sequence's timebase
    return {"item": f"V1@{record_start * timebase}", "name": name or clip.name, "path": str(clip), "track_index": 0,
            "start": str(record_start * timebase), "end": str((record_start + length) * timebase),
            "in": str(a * TICKS_PER_SECOND // rate), "out": str(b * TICKS_PER_SECOND // rate)}


def adapt_message(name: str, takes: list[dict], *, request_id: str, **budget) -> dict:
    """What the panel's "Adapt to actor" sends: the actor's name and the selected clips."""
    return {"op": "adapt", "request_id": request_id, "name": name, "clips": takes, **budget}


__all__ = ["TICKS_PER_SECOND", "TIMEBASE", "BridgeThread", "Panel", "adapt_message", "dub_message", "free_port", "make_ntsc_clip", "take"]
