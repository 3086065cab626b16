"""Who speaks when, from the original: each face's speaking stretches from its mouth and the shot's sound.

No weights are downloaded or learnt: a speaking mouth opens and closes at the rate of syllables (about
2-8 per second) while there is voice on the sound track, and a listening mouth does not. So, per frame:

* **voice** — the sound's loudness (:func:`~edidub_engine.mouth.drive.loudness_db`) within ``voice_db``
  of the shot's speech level (the 95th percentile of its sounding frames, as the mouth drive measures a line);
* **articulation** — each face's mouth opening (:func:`~edidub_engine.mouth.shape.mouth_opening`),
  band-passed to syllable rates (smiles, nods and slow drifts fall below the band, landmark jitter above
  it), as its RMS over a short window, divided by the face's *own* median articulation while there is voice:
  every mouth is measured against itself, so a wide mouth and a small one, or a near face and a far one,
  count alike (a face that barely moves keeps an absolute floor, so its jitter never becomes speech);
* **who** — in each voiced window, every face articulating at its own speaking level speaks (hysteresis:
  it starts at ``enter`` and holds while above ``stay``), so two faces may speak at once (crosstalk); where
  voice sounds and no face reaches its level, the sound is given to the face that moves most, if it moves
  at least ``someone`` of its level (somebody on screen is making that sound); no voice, nobody speaks;
* **smoothing** — pauses shorter than ``gap_s`` are bridged and stretches shorter than ``shortest_s`` dropped.

Why not the correlation of each mouth with the loudness (the lip-sync measures): on the shared two-shot
(``twoface_interview.mp4``), where both speakers' voices are mixed and overlap in about a third of the
half-second windows, a face's local correlation with the mixed loudness told its speaking frames from its
silent ones no better than chance (ROC AUC 0.43-0.64 over windows of 0.5-1 s and lags of 0-8 frames),
while voice-gated articulation did (0.87 for the anchor, 0.69 for the guest, whose mouth also moves a
lot while he laughs and listens).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np
from scipy.ndimage import binary_closing, binary_opening, label, median_filter, uniform_filter1d
from scipy.signal import butter, sosfiltfilt

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.mouth.drive import FLOOR_DB

__all__ = ["SpeakersConfig", "SpeakerTurns", "find_speakers", "mask_ranges"]


@dataclass(frozen=True)
class SpeakersConfig:
    """The rules' settings; the defaults are the ones measured on the shared two-shot (module docstring)."""

    voice_db: float = -20.0  # voice: loudness within this of the shot's speech level
    speech_level_quantile: float = 0.95  # the shot's speech level: this quantile of its sounding frames
    band_hz: tuple[float, float] = (1.5, 8.0)  # syllable rates
    window_s: float = 0.35  # articulation: RMS over this window
    floor: float = 0.01  # least articulation (opening units) that may stand for a face's own level
    enter: float = 1.0  # a face starts speaking at its own level ...
    stay: float = 0.6  # ... and holds while above this share of it
    someone: float = 0.5  # voice with no face at its level goes to the face that moves most, if at least this
    gap_s: float = 0.2  # pauses shorter than this are bridged
    shortest_s: float = 0.2  # stretches shorter than this are dropped

    def __post_init__(self) -> None:
        lo, hi = self.band_hz
        if not (0 < lo < hi) or self.window_s <= 0 or not (0 < self.stay <= self.enter) or self.voice_db >= 0:
            raise InvalidArgumentError(
                f"speaker settings do not fit together: band {self.band_hz} Hz, window {self.window_s} s, "
                f"enter {self.enter}, stay {self.stay}, voice {self.voice_db} dB",
                hint="band low < high, a positive window, 0 < stay <= enter, a negative voice_db",
            )

    def to_dict(self) -> dict:
        out = asdict(self)
        out["band_hz"] = list(self.band_hz)
        return out


@dataclass
class SpeakerTurns:
    """The decision for one shot: ``speaking`` [faces, frames] bool, ``articulation`` [faces, frames] (each face
    against its own speaking level; NaN where the face is not found), ``voiced`` [frames] bool."""

    speaking: np.ndarray
    articulation: np.ndarray
    voiced: np.ndarray
    config: SpeakersConfig

    def stretches(self, face: int, first_frame: int = 0) -> list[list[int]]:
        """Face ``face``'s speaking stretches as half-open ``[start, end)`` frame ranges, counted from ``first_frame``."""
        return mask_ranges(self.speaking[face], first_frame)

    def confidence(self, face: int) -> float:
        """Share of the voiced frames where the face was found and its decision was clear-cut: a speaking frame
        at least a quarter above the level it must hold (``stay``), a silent one a quarter below the level that
        would start it (``enter``)."""
        voiced = self.voiced
        if not voiced.any():
            return 1.0  # no voice: nobody speaks, for certain
        z = self.articulation[face][voiced]
        speaking = self.speaking[face][voiced]
        margin = np.where(speaking, z / self.config.stay - 1, 1 - z / self.config.enter)
        return round(float((np.isfinite(z) & (margin >= 0.25)).mean()), 3)


def mask_ranges(mask: np.ndarray, first_frame: int = 0) -> list[list[int]]:
    """The ``True`` runs of a boolean vector as half-open ``[start, end)`` ranges, offset by ``first_frame``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]])))
    return [[int(a) + first_frame, int(b) + first_frame] for a, b in edges.reshape(-1, 2)]


def find_speakers(openings: np.ndarray, loudness_db: np.ndarray, rate: Fraction | float,
                  config: SpeakersConfig | None = None) -> SpeakerTurns:
    """Decide who speaks on each frame of one shot.

    ``openings``: [faces, frames] mouth openings of the original (NaN where a face is not found, or its
    identity unsure). ``loudness_db``: [frames] the original sound's loudness under each frame. ``rate``:
    the frame rate. A face speaks only on frames where it was found.
    """
    config = config or SpeakersConfig()
    openings = np.atleast_2d(np.asarray(openings, np.float64))
    level = np.asarray(loudness_db, np.float64)
    faces, frames = openings.shape
    if level.shape != (frames,):
        raise InvalidArgumentError(f"the loudness has {level.size} frames, the mouth openings {frames}")
    fps = float(rate)
    found = np.isfinite(openings)
    voiced = _voiced(level, config)
    articulation = np.array([_articulation(o, fps, config) for o in openings]).reshape(faces, frames)
    scale = np.array([max(float(np.median(a[voiced & ok])) if (voiced & ok).any() else 0.0, config.floor)
                      for a, ok in zip(articulation, found)])
    z = np.where(found, articulation / scale[:, None], np.nan)
    heard = np.where(found & voiced, z, 0.0)
    speaking = np.array([_hysteresis(row, config.enter, config.stay) for row in heard]).reshape(faces, frames)
    if faces:
        silent_faces = voiced & ~speaking.any(axis=0)
        loudest = np.argmax(heard, axis=0)
        give = silent_faces & (heard[loudest, np.arange(frames)] >= config.someone)
        speaking[loudest[give], np.flatnonzero(give)] = True
    gap, shortest = _frames(config.gap_s, fps), _frames(config.shortest_s, fps)
    for k in range(faces):
        row = speaking[k]
        if gap > 1:
            row = binary_closing(np.pad(row, gap), np.ones(gap, bool))[gap:-gap]
        row &= found[k]  # a face speaks only where it is seen; what that leaves too short goes next
        if shortest > 1:
            row = binary_opening(row, np.ones(shortest, bool))
        speaking[k] = row
    return SpeakerTurns(speaking=speaking, articulation=z, voiced=voiced, config=config)


def _frames(seconds: float, fps: float) -> int:
    return max(1, int(round(seconds * fps)))


def _voiced(level_db: np.ndarray, config: SpeakersConfig) -> np.ndarray:
    sounding = level_db[level_db > FLOOR_DB]
    if sounding.size == 0:
        return np.zeros(level_db.shape, bool)
    speech_level = float(np.quantile(sounding, config.speech_level_quantile))
    return median_filter(level_db >= speech_level + config.voice_db, size=5, mode="nearest")


def _articulation(opening: np.ndarray, fps: float, config: SpeakersConfig) -> np.ndarray:
    """RMS of the opening's syllable-rate movement over ``window_s`` (gaps filled by interpolation for the filter)."""
    ok = np.isfinite(opening)
    if ok.sum() < 2:
        return np.zeros(opening.shape)
    x = np.arange(opening.size)
    filled = np.interp(x, x[ok], opening[ok])
    lo, hi = config.band_hz
    hi = min(hi, 0.45 * fps)  # below Nyquist at any frame rate
    sos = butter(2, [lo, hi], btype="band", fs=fps, output="sos")
    padlen = min(3 * (2 * len(sos) + 1), opening.size - 1)
    moving = sosfiltfilt(sos, filled, padlen=padlen) if opening.size > 1 else np.zeros(opening.shape)
    return np.sqrt(np.maximum(uniform_filter1d(moving**2, _frames(config.window_s, fps), mode="nearest"), 0.0))


def _hysteresis(values: np.ndarray, enter: float, stay: float) -> np.ndarray:
    """Runs above ``stay`` that reach ``enter`` somewhere."""
    runs, count = label(values >= stay)
    keep = np.zeros(count + 1, bool)
    keep[np.unique(runs[values >= enter])] = True
    keep[0] = False
    return keep[runs]
