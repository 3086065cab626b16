"""How each network is run at inference, saved beside its weights so no network runs with another's settings.

The LSD is trained on windows of its own length at its own resolution, the SRD
on 5-frame windows at a higher one (paper §3.2); running the SRD with the LSD's
24-frame windows cost about 16 dB. So each network folder carries
``sampling.json``::

    <bundle>/lsd/config.json, diffusion_pytorch_model.safetensors, sampling.json
    <bundle>/srd/...

with the MultiDiffusion window and stride, the DDIM step counts, the
guidance scale (LSD), the start strength (SRD: 0.4 starts from the
bicubic upsample noised to the level of the last 40 % of the steps) and, for an
SRD trained on the residual over bicubic, its target and scale. Bundles written before this file existed are read from
their model card's training config (window) and ``bundle.json`` defaults
(steps), with the paper's 50 % window overlap.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError

__all__ = ["SAMPLING_FILE", "SamplingSettings"]

SAMPLING_FILE = "sampling.json"


@dataclass(frozen=True, kw_only=True)
class SamplingSettings:
    """One network's inference settings (see the module docstring)."""

    window_frames: int
    window_stride: int
    steps: int
    inversion_steps: int | None = None  # LSD only: DDIM inversion of the original clip
    guidance_scale: float | None = None  # LSD only: classifier-free guidance
    strength: float | None = None  # SRD only: start part-way from the bicubic upsample (1 or None: from pure noise)
    # SRD only: what it was trained to diffuse ("image", the paper's, or "residual" over bicubic times residual_scale)
    target: str | None = None
    residual_scale: float | None = None
    # SRD only: the start's noise, times this (1 or None: the usual; 0: from the prior mean itself, so the SRD gives its
    # minimum-error x0 estimate: for a residual SRD that beat bicubic where noisy starts lost, see edidub check)
    start_noise: float | None = None

    def __post_init__(self) -> None:
        for name in ("window_frames", "window_stride", "steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"sampling setting {name}={value!r} must be a positive integer")
        if self.window_stride > self.window_frames:
            raise InvalidArgumentError(f"window_stride {self.window_stride} > window_frames {self.window_frames} leaves frames uncovered")
        if self.strength is not None and not 0.0 < self.strength <= 1.0:
            raise InvalidArgumentError(f"sampling setting strength={self.strength!r} must be in (0, 1]")
        if self.start_noise is not None and not 0.0 <= self.start_noise <= 1.0:
            raise InvalidArgumentError(f"sampling setting start_noise={self.start_noise!r} must be in [0, 1]")
        if self.target not in (None, "image", "residual"):
            raise InvalidArgumentError(f"sampling setting target={self.target!r} is not 'image' or 'residual'")
        if self.target == "residual" and not (self.residual_scale or 0) > 0:
            raise InvalidArgumentError(f"sampling setting residual_scale={self.residual_scale!r} must be positive for a residual target")

    @classmethod
    def load(cls, folder: str | Path) -> "SamplingSettings | None":
        """The settings saved in ``folder``, or None when the folder predates them."""
        path = Path(folder) / SAMPLING_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"{path} is not a valid sampling file ({exc})",
                                       hint="re-export the bundle, or delete the file to use the model card's settings") from None

    @classmethod
    def from_training(cls, card: dict[str, Any], *, steps: int, inversion_steps: int | None = None,
                      guidance_scale: float | None = None, strength: float | None = None,
                      stride: int | None = None, start_noise: float | None = None) -> "SamplingSettings":
        """From a network's training: the window it was trained on, half of it as stride (unless ``stride``).

        A network trained only below ``max_timestep`` starts sampling there (``strength``
        ``max_timestep / train_timesteps``) unless ``strength`` is given: it has never seen
        noisier inputs.
        """
        config = ((card or {}).get("training") or {}).get("config") or {}
        window = int(config.get("window_frames") or 24)
        if strength is None and config.get("max_timestep"):
            strength = round(float(config["max_timestep"]) / float(config.get("train_timesteps") or 1000), 4)
        residual = config.get("srd_target") == "residual"
        return cls(window_frames=window, window_stride=int(stride) if stride else max(1, window // 2), steps=int(steps),
                   inversion_steps=None if inversion_steps is None else int(inversion_steps),
                   guidance_scale=None if guidance_scale is None else float(guidance_scale),
                   strength=None if strength is None else float(strength),
                   target="residual" if residual else None,
                   residual_scale=float(config.get("residual_scale") or 4.0) if residual else None,
                   start_noise=None if start_noise is None else float(start_noise))

    def save(self, folder: str | Path) -> Path:
        from ..files import write_text_atomically

        path = Path(folder) / SAMPLING_FILE
        write_text_atomically(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}
