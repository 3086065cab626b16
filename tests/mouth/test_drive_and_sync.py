"""The mouth a line asks for (mouth.drive) and the figures that say whether a dub's lips follow it (mouth.sync)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.mouth import loudness_db, target_openings
from edidub_engine.mouth.drive import FLOOR_DB, MouthDriveConfig, own_speech, silent_frames
from edidub_engine.mouth.sync import lip_sync_figures, lip_sync_reasons

RATE = Fraction(25)


def _speech(frames: int, loud: list[tuple[int, int]], seed: int = 0) -> np.ndarray:
    """16 kHz audio: noise bursts over the given frame ranges (syllables), silence elsewhere."""
    rng = np.random.default_rng(seed)
    audio = np.zeros(frames * 640, np.float32)
    for a, b in loud:
        audio[a * 640 : b * 640] = rng.normal(0, 0.2, (b - a) * 640) * np.hanning((b - a) * 640)
    return audio


def test_loudness_is_per_frame_and_silence_is_the_floor():
    audio = _speech(50, [(10, 20)])
    level = loudness_db(audio, RATE, 50)
    assert level.shape == (50,) and level[0] == FLOOR_DB and level[15] > -30
    assert loudness_db(audio[: 30 * 640], RATE, 50)[40] == FLOOR_DB  # past the end of the audio: silence


def test_targets_close_on_silence_and_open_on_the_loudest_syllables():
    frames = 100
    level = loudness_db(_speech(frames, [(10, 18), (30, 45), (60, 64)]), RATE, frames)
    actor = np.random.default_rng(1).uniform(0.0, 0.2, 400)  # the actor's openings seen in the shot
    targets = target_openings(level, actor)
    closed = np.quantile(actor, MouthDriveConfig().closed_quantile)
    assert np.allclose(targets[:8], closed) and np.allclose(targets[50:58], closed) and np.allclose(targets[70:], closed)
    assert targets[36:40].max() > np.quantile(actor, 0.8)  # the middle of the loud syllable: a wide opening
    assert targets.max() <= actor.max() + 1e-9  # never wider than the actor's own mouth


def test_strength_moves_between_the_source_and_the_line():
    level = loudness_db(_speech(60, [(20, 40)]), RATE, 60)
    actor = np.linspace(0, 0.2, 200)
    source = np.full(60, 0.15)  # the source's mouth open all along
    line = target_openings(level, actor)
    assert np.allclose(target_openings(level, actor, source_openings=source, strength=0.0), source)
    assert np.allclose(target_openings(level, actor, source_openings=source, strength=1.0), line)
    half = target_openings(level, actor, source_openings=source, strength=0.5)
    assert np.allclose(half, (source + line) / 2)
    with pytest.raises(InvalidArgumentError):
        target_openings(level, actor, strength=1.5)
    with pytest.raises(InvalidArgumentError, match="no mouth"):
        target_openings(level, np.array([np.nan]))


def test_own_speech_is_recognised_and_another_line_is_not():
    a = loudness_db(_speech(80, [(5, 20), (30, 50)], seed=1), RATE, 80)
    b = loudness_db(_speech(80, [(12, 25), (55, 75)], seed=2), RATE, 80)
    assert own_speech(a, a) and not own_speech(a, b)
    assert silent_frames(a)[:4].all() and not silent_frames(a)[10:15].any()


def _figures(output, source, dub_db, source_db):
    return lip_sync_figures(np.asarray(source, float), np.asarray(output, float), dub_db, source_db)


def test_a_copy_of_the_source_is_flagged_and_a_mouth_that_follows_the_line_is_not():
    frames = 125
    dub = loudness_db(_speech(frames, [(25, 40), (50, 70), (90, 110)], seed=3), RATE, frames)
    orig = loudness_db(_speech(frames, [(0, 22), (30, 48), (75, 95)], seed=4), RATE, frames)
    source = np.where(loudness_db(_speech(frames, [(0, 22), (30, 48), (75, 95)], seed=4), RATE, frames) > -30, 0.12, 0.01)
    source = source + np.random.default_rng(5).normal(0, 0.005, frames)
    copy = _figures(source, source, dub, orig)  # a pass-through
    assert copy.copy_corr > 0.99 and copy.open_change < 0.01
    reasons = lip_sync_reasons(copy)
    assert any("original performance" in r for r in reasons) and any("lip leak" in r for r in reasons)
    follows = np.where(dub > np.quantile(dub[dub > FLOOR_DB], 0.95) - 25, 0.12, 0.01) + np.random.default_rng(6).normal(0, 0.005, frames)
    good = _figures(follows, source, dub, orig)
    assert good.sync_dub > good.sync_orig + 0.3 and good.copy_corr < 0.6 and good.open_change > 0.3
    assert lip_sync_reasons(good) == []
    own = _figures(source, source, orig, orig)  # the line is the source's own sound: keeping its mouth is right
    assert own.own_speech and lip_sync_reasons(own) == []
