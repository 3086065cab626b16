"""`edidub adapt` on tiny budgets: a bundle that says what it was made from, an exact resume after a stop,
no half-written bundle, the base untouched, and clear refusals of clips it cannot learn from."""

from __future__ import annotations

import hashlib
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from edidub_engine.errors import CancelledError, InvalidArgumentError, OutputExistsError
from edidub_engine.models.bundle import read_bundle
from edidub_engine.training.adapt import AdaptClip, adapt_bundle, held_back_range, parse_clip

TINY = {"batch_size": 2}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_clip_ranges_and_the_held_back_stretch():
    assert parse_clip("take.mov@10-300") == AdaptClip(Path("take.mov"), 10, 300)
    assert parse_clip("take.mov") == AdaptClip(Path("take.mov"))
    assert held_back_range(0, 335) == (0, 268, 335) and held_back_range(0, 75) == (0, 50, 75)
    with pytest.raises(InvalidArgumentError, match="too short"):
        held_back_range(0, 60)


def test_a_stopped_adaptation_resumes_and_writes_a_bundle_that_says_what_it_was_made_from(starter_bundle, footage_path, tmp_path):
    clip = AdaptClip(footage_path("grid_lbax4n.mpg"))
    base_before = _digest(starter_bundle)
    out = tmp_path / "actor"
    calls = []

    def stop_after_first_chunk() -> bool:
        calls.append(1)
        return len(calls) > 1

    with pytest.raises(CancelledError, match="--resume"):
        adapt_bundle([clip], out, base=starter_bundle, steps=4, validate_every=2, overrides=TINY, should_cancel=stop_after_first_chunk)
    assert not out.exists() and (tmp_path / ".actor.adapt" / "adapt.json").is_file()  # no half-written bundle, a state to resume
    with pytest.raises(OutputExistsError, match="--resume"):
        adapt_bundle([clip], out, base=starter_bundle, steps=4, validate_every=2, overrides=TINY)

    result = adapt_bundle([clip], out, base=starter_bundle, steps=4, validate_every=2, overrides=TINY, resume=True)
    assert [h["step"] for h in result.history] == [0, 2, 4] and result.steps == 4
    assert result.best_db >= result.before_db  # the best weights are kept (the base's when nothing beat them)
    info = read_bundle(out)
    card = json.loads((out / "model_card.json").read_text(encoding="utf-8"))["adaptation"]
    assert card["base"]["sha256"] and card["clips"][0]["train_frames"] == [0, 50] and card["clips"][0]["validation_frames"] == [50, 75]
    assert card["validation"]["before_db"] == pytest.approx(result.before_db, abs=1e-3) and "own footage" in card["made_from"]
    assert info.sampling("lsd") == read_bundle(starter_bundle).sampling("lsd")  # the base's own settings travel
    assert _digest(starter_bundle) == base_before  # never written to
    assert not (tmp_path / ".actor.adapt").exists()


def test_silent_clips_a_missing_budget_and_an_existing_output_are_refused(starter_bundle, footage_path, tmp_path):
    from edidub_engine.media import ClipWriter, Codec, read_frames

    frames = read_frames(footage_path("grid_bbaf2n.mpg"), 0, 75)
    silent = tmp_path / "silent_take.mkv"
    with ClipWriter(silent, width=frames.shape[2], height=frames.shape[1], rate=Fraction(25), codec=Codec.FFV1,
                    audio=np.zeros(48000, np.float32), audio_sample_rate_hz=16000) as writer:
        for frame in frames:
            writer.write(frame)
    with pytest.raises(InvalidArgumentError, match="silent_take.mkv.*silent"):
        adapt_bundle([AdaptClip(silent)], tmp_path / "a", base=starter_bundle, steps=2)
    with pytest.raises(InvalidArgumentError, match="budget"):
        adapt_bundle([AdaptClip(silent)], tmp_path / "b", base=starter_bundle)
    with pytest.raises(OutputExistsError, match="never overwrites"):
        adapt_bundle([AdaptClip(silent)], starter_bundle, base=starter_bundle, steps=2)
