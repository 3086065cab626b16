"""Shared footage for the media tests (real files, no mocks); tests skip where it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
_VIDEO_SUFFIXES = {".mp4", ".mpg", ".mov", ".mkv"}


def _footage_path(name: str) -> Path:
    path = FOOTAGE / name
    if not path.is_file():
        pytest.skip(f"shared footage {name} is not present in {FOOTAGE}")
    return path


@pytest.fixture
def footage():
    """``footage("grid_bbaf2n.mpg")`` → its path, or skip the test with the reason."""
    return _footage_path


def pytest_generate_tests(metafunc):
    """A test taking ``video_clip`` runs once per video file in the footage folder."""
    if "video_clip" in metafunc.fixturenames:
        names = sorted(p.name for p in FOOTAGE.glob("*") if p.suffix in _VIDEO_SUFFIXES) if FOOTAGE.is_dir() else []
        if names:
            metafunc.parametrize("video_clip", [FOOTAGE / n for n in names], ids=names)
        else:
            metafunc.parametrize(
                "video_clip", [pytest.param(None, marks=pytest.mark.skip(reason=f"shared footage folder {FOOTAGE} is absent"))]
            )
