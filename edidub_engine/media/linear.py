"""Scene-linear pictures (EXR plates) through a view transform: what the networks see, how their change returns.

The networks were trained on display-referred video, so a linear plate is shown to them as a
compositor's viewer shows it by default: values clipped to [0, 1] and encoded with the sRGB
curve (IEC 61966-2-1). That is the stated default; a plate graded for another display still
dubs, its mouth only sees slightly other contrast. The change comes back through the inverse:

    out = src + (to_linear(clip(to_display(src) + change)) - to_linear(to_display(src)))

exactly where the change is not zero, so every other sample keeps its bits (its sign of zero and
NaNs included), and a highlight above 1.0 under the mouth keeps its headroom.
"""

from __future__ import annotations

import numpy as np

__all__ = ["to_display", "to_linear"]

_A, _GAMMA, _KNEE_LINEAR, _KNEE_DISPLAY, _SLOPE = 0.055, 2.4, 0.0031308, 0.04045, 12.92


def to_display(linear: np.ndarray) -> np.ndarray:
    """Scene-linear values → sRGB-encoded display values in [0, 1] (float64)."""
    x = np.clip(np.nan_to_num(np.asarray(linear, dtype=np.float64), nan=0.0), 0.0, 1.0)
    return np.where(x <= _KNEE_LINEAR, x * _SLOPE, (1 + _A) * np.power(x, 1 / _GAMMA) - _A)


def to_linear(display: np.ndarray) -> np.ndarray:
    """sRGB-encoded display values in [0, 1] → linear (float64); the inverse of :func:`to_display` on [0, 1]."""
    v = np.clip(np.asarray(display, dtype=np.float64), 0.0, 1.0)
    return np.where(v <= _KNEE_DISPLAY, v / _SLOPE, np.power((v + _A) / (1 + _A), _GAMMA))


def to_rgb8(linear: np.ndarray) -> np.ndarray:
    """H×W×3 linear float → H×W×3 uint8 display RGB, as :func:`~edidub_engine.media.decode.to_rgb` gives video."""
    return np.rint(to_display(linear) * 255.0).astype(np.uint8)
