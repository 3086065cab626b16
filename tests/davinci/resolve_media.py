"""Constants and helpers shared by the Resolve fixtures and tests (a module of its own: every
test folder has a conftest.py, so importing one by name would pick whichever loaded first)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOOTAGE = REPO.parent / "shared" / "footage"
CLIP_FRAMES = 20
# timeline rate text → (media rate, start timecode, file name)
RATES = {
    "24": (Fraction(24), "01:00:00:00", "talk_24.mov"),
    "23.976": (Fraction(24000, 1001), "01:00:00:00", "talk_23976.mov"),
    "29.97 DF": (Fraction(30000, 1001), "01:00:00;00", "talk_2997df.mov"),
}


def need(name: str) -> Path:
    path = FOOTAGE / name
    if not path.is_file():
        pytest.skip(f"shared footage {path} is absent")
    return path
