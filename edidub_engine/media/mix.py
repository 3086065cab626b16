"""A sound track laid out from pieces of audio files, read in order a block at a time.

Why blocks: the dub of a ten-minute shot is 115 MB of float samples at 48 kHz;
the writer needs them a few milliseconds at a time, so the mix decodes only the
block it is asked for (``load_audio`` seeks with pre-roll and resamples on a
fixed grid, so block edges are seamless — the tests compare a block-wise read
with a whole one).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.media.audio import load_audio
from edidub_engine.timebase import round_half_up

__all__ = ["AudioMix", "MixPiece"]


@dataclass(frozen=True)
class MixPiece:
    """``length_s`` seconds of ``path`` from ``start_s``, placed ``offset_s`` into the track."""

    path: Path
    start_s: Fraction
    offset_s: Fraction
    length_s: Fraction


class AudioMix:
    """Mono float32 at ``sample_rate_hz``: the pieces summed, silence elsewhere, ``length_s`` long.

    ``read(count)`` returns the next ``count`` samples (zeros past the end).
    """

    def __init__(self, pieces: list[MixPiece], *, length_s: Fraction, sample_rate_hz: int, block_s: int = 10):
        if sample_rate_hz <= 0 or int(sample_rate_hz) != sample_rate_hz:
            raise InvalidArgumentError(f"sample_rate_hz={sample_rate_hz} is not a positive whole number")
        self.sample_rate_hz = int(sample_rate_hz)
        self.length = round_half_up(Fraction(length_s) * self.sample_rate_hz)
        self._pieces = [(p, round_half_up(p.offset_s * self.sample_rate_hz), round_half_up(p.length_s * self.sample_rate_hz)) for p in pieces]
        self._block = block_s * self.sample_rate_hz
        self._position = 0
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0

    def _render(self, first: int, last: int) -> np.ndarray:
        out = np.zeros(last - first, np.float32)
        rate = self.sample_rate_hz
        for piece, at, count in self._pieces:
            lo, hi = max(first, at), min(last, at + count)
            if lo >= hi:
                continue
            audio = load_audio(piece.path, start_s=piece.start_s + Fraction(lo - at, rate), duration_s=Fraction(hi - lo, rate),
                               sample_rate_hz=rate)
            out[lo - first : hi - first] += audio
        return out

    def read(self, count: int) -> np.ndarray:
        """The next ``count`` samples."""
        out = np.zeros(count, np.float32)
        filled = 0
        while filled < count and self._position < self.length:
            offset = self._position - self._buffer_start
            if offset >= len(self._buffer):
                self._buffer_start = self._position
                self._buffer = self._render(self._position, min(self.length, self._position + self._block))
                offset = 0
            take = min(count - filled, len(self._buffer) - offset)
            out[filled : filled + take] = self._buffer[offset : offset + take]
            filled += take
            self._position += take
        return out
