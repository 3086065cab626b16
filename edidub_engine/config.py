"""Typed settings for dubbing a shot; they travel with results (RenderedClip.qc) and cache keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import InvalidArgumentError


RESTORE_MODES = ("auto", "srd", "bicubic")
LSD_MODES = ("auto", "on", "off")


@dataclass(frozen=True, kw_only=True)
class DubSettings:
    """How one shot is dubbed. Defaults are the paper's (section 4.2, table 5)."""

    steps: int = 50  # DDIM sampling steps (LSD)
    inversion_steps: int = 50  # DDIM inversion steps (LSD)
    guidance_scale: float = 5.0
    srd_steps: int | None = None  # SRD sampling steps; None: the same as ``steps``
    window_frames: int = 24  # MultiDiffusion windows over time
    window_stride: int = 12
    section_frames: int = 120  # sections with an unmasked carry-over
    carry_frames: int = 12
    srd_window_frames: int = 5  # the SRD's own MultiDiffusion windows (it is trained on 5 frames, paper §3.2)
    srd_window_stride: int = 2
    srd_strength: float = 1.0  # 1: the SRD samples from pure noise; less: from the noised bicubic upsample (img2img)
    srd_target: str = "image"  # what the SRD diffuses: the crop (the paper's) or "residual" over bicubic (its bundle says)
    srd_residual_scale: float = 1.0
    srd_start_noise: float = 1.0  # 0: the SRD starts from the clean estimate itself (its minimum-error restoration)
    srd_chunk_frames: int = 48  # SRD runs chunk by chunk so memory does not follow the shot's length
    # How the LSD output is brought to the SRD size: "auto" runs the bundle's SRD only where its check found it
    # better than bicubic (`edidub check`), "srd" always runs it, "bicubic" never does.
    restore: str = "auto"
    seed: int = 0
    min_run_frames: int = 8  # shorter stretches with a face are passed through ("too_short")
    crossfade_frames: int = 4  # ramp of the edit into and out of a passed-through stretch
    feather_px: float = 8.0  # paste-back matte feather, in pixels of a 224 crop
    keep_tone: bool = True  # remove the LSD's colour cast under the mask (edidub_engine.tone); False: its raw output
    # How far the mouth moves from the source's toward the one the dub line asks for (edidub_engine.mouth):
    # 0 keeps the source's mouth, 1 takes the line's. Per shot: `edidub dub --strength`, ShotRequest options.strength.
    strength: float = 1.0
    # Whether the lip-sync network edits the clip with its new mouths: "auto" where `edidub check` found that its edit
    # brings moved mouths closer to the truth, "on" always, "off" never (the actor's moved mouths are the edit).
    lsd: str = "auto"

    def __post_init__(self) -> None:
        for name in ("steps", "inversion_steps", "window_frames", "window_stride", "section_frames", "srd_chunk_frames",
                     "min_run_frames", "srd_window_frames", "srd_window_stride"):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.srd_steps is not None and self.srd_steps < 1:
            raise InvalidArgumentError(f"srd_steps must be at least 1, got {self.srd_steps}")
        if self.guidance_scale < 1.0:
            raise InvalidArgumentError(f"guidance_scale must be 1 or more, got {self.guidance_scale}", hint="5 is the paper's value; 1 turns guidance off")
        if not 0 <= self.carry_frames < self.section_frames:
            raise InvalidArgumentError("carry_frames must be at least 0 and less than section_frames")
        if self.window_stride > self.window_frames or self.srd_window_stride > self.srd_window_frames:
            raise InvalidArgumentError("a window stride longer than its window would leave frames uncovered")
        if self.restore not in RESTORE_MODES:
            raise InvalidArgumentError(f"restore={self.restore!r} is not one of {', '.join(RESTORE_MODES)}",
                                       hint="'auto' follows the bundle's measured check")
        if not 0.0 < self.srd_strength <= 1.0:
            raise InvalidArgumentError(f"srd_strength must be in (0, 1], got {self.srd_strength}")
        if not 0.0 <= self.srd_start_noise <= 1.0:
            raise InvalidArgumentError(f"srd_start_noise must be in [0, 1], got {self.srd_start_noise}")
        if self.srd_target not in ("image", "residual") or not self.srd_residual_scale > 0:
            raise InvalidArgumentError(f"srd_target={self.srd_target!r} must be 'image' or 'residual' with a positive scale")
        if self.lsd not in LSD_MODES:
            raise InvalidArgumentError(f"lsd={self.lsd!r} is not one of {', '.join(LSD_MODES)}", hint="'auto' follows the bundle's measured check")
        if not 0.0 <= self.strength <= 1.0:
            raise InvalidArgumentError(f"strength must be in [0, 1], got {self.strength}",
                                       hint="0 keeps the source's mouth, 1 follows the dub line fully")
        if self.crossfade_frames < 0:
            raise InvalidArgumentError("crossfade_frames must not be negative")

    def with_overrides(self, **overrides: Any) -> "DubSettings":
        """A copy with the given fields replaced; ``None`` values keep the current setting."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
