"""Shared test fixtures: where the project's shared footage lives, and skipping when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = REPO_ROOT.parent / "shared" / "footage"


@pytest.fixture(scope="session")
def footage_path():
    """``footage_path("grid_bbaf2n.mpg")`` → its path under ../shared/footage, or skip the test."""

    def find(name: str) -> Path:
        path = FOOTAGE / name
        if not path.is_file():
            pytest.skip(f"shared footage {path} is absent (tests read it from ../shared/footage)")
        return path

    return find
