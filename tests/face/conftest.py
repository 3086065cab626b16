"""Fixtures for face tests: real footage decoded through edidub_engine.media."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FOOTAGE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "footage"


@dataclass
class Clip:
    """Decoded frames: file-relative grid indices from 0, RGB uint8 arrays, times on the file clock (s)."""

    frames: list[tuple[int, np.ndarray]]
    times_s: list[float]


def _decode(path: Path, start: int, count: int | None) -> Clip:
    from edidub_engine.media import frame_to_seconds, iter_frames, probe_video

    info = probe_video(path)
    end = info.frame_count if count is None else min(info.frame_count, start + count)
    frames = list(iter_frames(info, start, end))
    times = [info.video_start_s + float(frame_to_seconds(i, info.rate)) for i, _ in frames]
    return Clip(frames=frames, times_s=times)


_CACHE: dict[tuple[str, int, int | None], Clip] = {}


@pytest.fixture(scope="session")
def footage() -> Callable[..., Clip]:
    """``footage(name, start=0, count=None) -> Clip``; skips the test when the file is absent."""

    def load(name: str, start: int = 0, count: int | None = None) -> Clip:
        path = FOOTAGE_DIR / name
        if not path.is_file():
            pytest.skip(f"shared footage {name} not found at {path} (the ../shared checkout is absent)")
        key = (name, start, count)
        if key not in _CACHE:
            _CACHE[key] = _decode(path, start, count)
        return _CACHE[key]

    return load


@pytest.fixture(scope="session")
def tracked() -> Callable[..., list]:
    """``tracked(clip, **tracker_kwargs)``: observations for a clip, cached per clip and settings."""
    from edidub_engine.face import FaceTracker

    cache: dict[tuple[int, tuple], list] = {}

    def run(clip: Clip, **kwargs: object) -> list:
        key = (id(clip), tuple(sorted(kwargs.items())))
        if key not in cache:
            with FaceTracker(**kwargs) as tracker:
                cache[key] = list(tracker.track(clip.frames))
        return cache[key]

    return run
