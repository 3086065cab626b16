"""What the dub line asks of the mouth: how open it is on every frame.

The line's loudness follows its syllables — loud on open vowels, near silent on closures and in
pauses — and a mouth's opening follows that envelope (the classic audiovisual-speech finding: lip
aperture tracks the acoustic envelope, the mouth leading the sound by tens of milliseconds). So the
target opening of frame *t* is the line's loudness there, ranked against the rest of the line and
mapped onto the same rank of the *actor's own* openings in the shot: silence gives the actor's closed
mouth, the line's loudest syllables the actor's widest openings. Nothing is learnt from other people;
the mapping is fitted on the shot itself, so each actor keeps his or her own range.

Measured against alternatives on the shared footage (own speech, face-mesh opening): a log-mel
convolutional net and ridge regressions trained on the 119 training clips predicted the openings of
unseen speakers' own footage no better than chance (mean r 0.02-0.05), and fitting this mapping's lead,
smoothing and silence level per actor (80 % of a clip, judged on the rest) helped two clips of seven
and hurt five; dubs driven by this envelope with the shipped settings follow their lines (README, "Lip
sync": sync with the line about 0.75 against about 0.1 with the original sound, over seven pairs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edidub_engine.errors import InvalidArgumentError

__all__ = ["FLOOR_DB", "MouthDriveConfig", "loudness_db", "own_speech", "silent_frames", "target_openings"]

FLOOR_DB = -100.0
"""Loudness of digital silence (and of frames past the end of the line)."""


@dataclass(frozen=True)
class MouthDriveConfig:
    """How a line's loudness becomes openings. Stored with a model bundle (``mouth/drive.json``)."""

    silence_db: float = -25.0  # below the line's speech level by this much, the line is silent: the mouth closes
    speech_level_quantile: float = 0.95  # the line's speech level: this quantile of its frames' loudness
    lead_frames: int = 1  # the mouth moves ahead of the sound (one frame is 40 ms at 25 fps)
    smooth_frames: float = 0.7  # Gaussian smoothing of the envelope (σ, frames): a mouth cannot snap shut between two frames
    closed_quantile: float = 0.03  # the actor's closed mouth: this quantile of the shot's openings
    open_quantiles: tuple[float, float] = (0.3, 1.0)  # the actor's openings the line's speech spans, quietest to loudest
    own_speech_correlation: float = 0.95  # a line this correlated with the source's own sound is that sound: keep its mouth

    def __post_init__(self) -> None:
        lo, hi = self.open_quantiles
        if not (0.0 <= self.closed_quantile <= lo < hi <= 1.0):
            raise InvalidArgumentError(f"mouth drive quantiles must rise within [0, 1]: closed {self.closed_quantile}, open {self.open_quantiles}")
        if self.silence_db >= 0 or self.smooth_frames < 0 or self.lead_frames < 0:
            raise InvalidArgumentError("mouth drive: silence_db must be negative, smooth_frames and lead_frames not")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["open_quantiles"] = list(self.open_quantiles)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MouthDriveConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(f"mouth drive settings name unknown fields: {', '.join(unknown)}")
        values = dict(data)
        if "open_quantiles" in values:
            values["open_quantiles"] = tuple(float(v) for v in values["open_quantiles"])
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> "MouthDriveConfig":
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def loudness_db(audio: np.ndarray, rate: Fraction | float, frames: int, *, sample_rate_hz: int = 16000) -> np.ndarray:
    """``[frames]`` RMS level (dB re full scale) of the audio under each video frame; audio sample 0 is frame 0's start."""
    a = np.asarray(audio, np.float64)
    fps = float(rate)
    edges = np.round(np.arange(frames + 1) / fps * sample_rate_hz).astype(np.int64)
    out = np.full(frames, FLOOR_DB)
    if a.size == 0 or frames == 0:
        return out
    power = np.concatenate([[0.0], np.cumsum(a * a)])
    lo, hi = np.minimum(edges[:-1], a.size), np.minimum(edges[1:], a.size)
    count = hi - lo
    mean = np.where(count > 0, (power[hi] - power[lo]) / np.maximum(count, 1), 0.0)
    with np.errstate(divide="ignore"):
        level = 10 * np.log10(mean)
    return np.where((count > 0) & (mean > 0), np.maximum(level, FLOOR_DB), FLOOR_DB)


def _relative(level_db: np.ndarray, config: MouthDriveConfig) -> np.ndarray:
    """Loudness relative to the line's speech level (0 dB: its loud syllables)."""
    sounding = level_db[level_db > FLOOR_DB]
    if sounding.size == 0:
        return np.full(level_db.shape, FLOOR_DB)
    return level_db - np.quantile(sounding, config.speech_level_quantile)


def silent_frames(level_db: np.ndarray, config: MouthDriveConfig | None = None) -> np.ndarray:
    """``[frames]`` bool: where the line is silent (below its speech level by ``silence_db``)."""
    config = config or MouthDriveConfig()
    return _relative(np.asarray(level_db, np.float64), config) < config.silence_db


def own_speech(dub_db: np.ndarray, source_db: np.ndarray, config: MouthDriveConfig | None = None) -> bool:
    """True when the dub line is the source's own sound (a round trip, or the same take): its loudness and the
    source's rise and fall together."""
    config = config or MouthDriveConfig()
    a, b = np.asarray(dub_db, np.float64), np.asarray(source_db, np.float64)
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if n < 10 or a.std() == 0 or b.std() == 0:
        return False
    return float(np.corrcoef(a, b)[0, 1]) >= config.own_speech_correlation


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(values) < 2:
        return values
    radius = max(1, int(np.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    return np.convolve(np.pad(values, radius, mode="edge"), kernel, mode="valid")


def target_openings(dub_db: np.ndarray, actor_openings: np.ndarray, *, source_openings: np.ndarray | None = None,
                    strength: float = 1.0, config: MouthDriveConfig | None = None) -> np.ndarray:
    """``[frames]`` mouth openings (:func:`~edidub_engine.mouth.shape.mouth_opening` units) the line asks for.

    ``dub_db``: the line's :func:`loudness_db` over the shot's frames. ``actor_openings``: the actor's
    openings seen in the shot (any number; NaN ignored): the range the targets are drawn from.
    ``source_openings`` ``[frames]`` (NaN where unknown) and ``strength`` in [0, 1]: how far each frame
    moves from the source's own opening toward the line's (0: the source's mouth; 1: the line's).
    """
    config = config or MouthDriveConfig()
    if not 0.0 <= strength <= 1.0:
        raise InvalidArgumentError(f"strength={strength} must be in [0, 1]")
    level = np.asarray(dub_db, np.float64)
    frames = len(level)
    actor = np.asarray(actor_openings, np.float64)
    actor = actor[np.isfinite(actor)]
    if actor.size == 0:
        raise InvalidArgumentError("no mouth of the actor was seen: the line cannot be mapped onto it")
    relative = _gaussian(_relative(level, config), config.smooth_frames)
    if config.lead_frames:  # frame t shows what the line says lead_frames later
        relative = np.concatenate([relative[config.lead_frames:], np.repeat(relative[-1:], min(frames, config.lead_frames))])
    speaking = relative >= config.silence_db
    targets = np.full(frames, np.quantile(actor, config.closed_quantile))
    if speaking.any():
        rank = (np.argsort(np.argsort(relative[speaking], kind="stable"), kind="stable") + 0.5) / speaking.sum()
        lo, hi = config.open_quantiles
        targets[speaking] = np.quantile(actor, lo + (hi - lo) * rank)
    if source_openings is None:
        return targets
    source = np.asarray(source_openings, np.float64)
    if source.shape != (frames,):
        raise InvalidArgumentError(f"source_openings has {source.shape[0] if source.ndim else 0} frames, the line {frames}")
    return np.where(np.isfinite(source), source + strength * (targets - source), targets)
