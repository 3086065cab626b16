"""Fixtures for face tests: real footage decoded with PyAV (to be switched to edidub_engine.media)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FOOTAGE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "footage"


@dataclass
class Clip:
    """Decoded frames: file-relative indices from 0, RGB uint8 arrays, presentation times (s)."""

    frames: list[tuple[int, np.ndarray]]
    times_s: list[float]


def _decode(path: Path, start: int, count: int | None) -> Clip:
    import av

    frames: list[tuple[int, np.ndarray]] = []
    times: list[float] = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if count is not None and i >= start + count:
                break
            if i >= start:
                frames.append((i, frame.to_ndarray(format="rgb24")))
                times.append(float(frame.time) if frame.time is not None else float("nan"))
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
