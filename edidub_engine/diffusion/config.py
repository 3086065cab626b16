"""Settings of the masked diffusion process (paper appendix B, table 5) as one frozen dataclass.

The defaults are the paper's: DDPM with 1000 cosine-schedule steps for training,
50 deterministic DDIM steps (and 50 DDIM-inversion steps) at inference with
guided-diffusion's uniform spacing, classifier-free guidance 5, epsilon
prediction, clipped x0 estimates, MultiDiffusion windows of 24 frames with
stride 12, and 120-frame sections that carry 12 frames over.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields

from edidub_engine.errors import InvalidArgumentError

__all__ = ["BetaSchedule", "DiffusionConfig", "LossReduction", "Phase", "TimestepSpacing"]


class BetaSchedule(enum.StrEnum):
    """Noise schedules, named as diffusers names them (the value goes into the scheduler config)."""

    COSINE = "squaredcos_cap_v2"  # Nichol & Dhariwal's cosine schedule, betas capped at 0.999 (the paper's)
    LINEAR = "linear"
    SCALED_LINEAR = "scaled_linear"


class TimestepSpacing(enum.StrEnum):
    """How inference timesteps are picked from the training ones (diffusers names).

    ``LEADING`` is guided-diffusion's "uniform" DDIM spacing, the paper's: 50 of
    1000 steps gives 0, 20, …, 980. ``TRAILING`` ends at 999 for every step
    count, useful when inversion and sampling step counts differ.
    """

    LEADING = "leading"
    TRAILING = "trailing"


class LossReduction(enum.StrEnum):
    """How eq. 1's masked squared error is normalised.

    ``PER_SAMPLE`` divides each sample's masked error by that sample's masked
    element count, then averages over the batch: every face counts the same
    whatever its size, which is the paper's stated reason for the
    normalisation. ``PER_BATCH`` divides the batch's summed error by the
    batch's masked element count (large faces weigh more).
    """

    PER_SAMPLE = "per_sample"
    PER_BATCH = "per_batch"


class Phase(enum.StrEnum):
    """Which half of an edit a progress step belongs to."""

    INVERT = "invert"
    SAMPLE = "sample"


@dataclass(frozen=True, kw_only=True)
class DiffusionConfig:
    """Everything the diffusion process needs; the network is not part of it.

    ``max_batch`` bounds the rows of one denoiser call (after classifier-free
    guidance doubles them); all MultiDiffusion windows of a step go into as few
    calls as that allows, at least one window per call. ``batch_guidance``
    runs the conditional and unconditional rows of classifier-free guidance in
    one call (``False``: two calls, the reference path). ``mask_key`` is the
    cond entry the process fills with the mask it actually uses (section carry
    frames zeroed, windows sliced) so the network always sees the right mask;
    ``None`` leaves cond alone.
    """

    train_steps: int = 1000
    schedule: BetaSchedule = BetaSchedule.COSINE
    inference_steps: int = 50
    inversion_steps: int = 50
    timestep_spacing: TimestepSpacing = TimestepSpacing.LEADING
    guidance_scale: float = 5.0
    window_frames: int = 24
    window_stride: int = 12
    section_frames: int = 120
    carry_frames: int = 12
    clip_sample: bool = True
    clip_sample_range: float = 1.0
    # 10 %: the usual classifier-free guidance dropout (Ho & Salimans); the paper does not state its rate.
    cond_drop_prob: float = 0.1
    loss_reduction: LossReduction = LossReduction.PER_SAMPLE
    max_batch: int = 32
    batch_guidance: bool = True
    mask_key: str | None = "mask"

    def __post_init__(self) -> None:
        for name, kind in (
            ("schedule", BetaSchedule),
            ("timestep_spacing", TimestepSpacing),
            ("loss_reduction", LossReduction),
        ):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(repr(member.value) for member in kind)
                raise InvalidArgumentError(f"{name}={value!r} is not one of {choices}") from None
        positive = ("train_steps", "inference_steps", "inversion_steps", "window_frames", "window_stride",
                    "section_frames", "max_batch")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidArgumentError(f"DiffusionConfig.{name}={value!r} must be a positive integer")
        for name in ("inference_steps", "inversion_steps"):
            if getattr(self, name) > self.train_steps:
                raise InvalidArgumentError(
                    f"DiffusionConfig.{name}={getattr(self, name)} exceeds train_steps={self.train_steps}"
                )
        if self.window_stride > self.window_frames:
            raise InvalidArgumentError(
                f"window_stride={self.window_stride} > window_frames={self.window_frames} would leave frames uncovered"
            )
        if not isinstance(self.carry_frames, int) or not 0 <= self.carry_frames < self.section_frames:
            raise InvalidArgumentError(
                f"carry_frames={self.carry_frames!r} must be in [0, section_frames={self.section_frames})",
                hint="each section must generate at least one new frame",
            )
        if not 0.0 <= self.cond_drop_prob <= 1.0:
            raise InvalidArgumentError(f"cond_drop_prob={self.cond_drop_prob} is not a probability")
        if not self.clip_sample_range > 0:
            raise InvalidArgumentError(f"clip_sample_range={self.clip_sample_range} must be positive")

    def scheduler_config(self) -> dict:
        """The diffusers ``DDIMScheduler`` config these settings stand for.

        ``set_alpha_to_one`` and ``steps_offset=0`` make the last DDIM step land
        on the clean image (ᾱ = 1) as guided-diffusion does, and make the
        inverse scheduler start from it.
        """
        return {
            "num_train_timesteps": self.train_steps,
            "beta_schedule": str(self.schedule),
            "prediction_type": "epsilon",
            "clip_sample": self.clip_sample,
            "clip_sample_range": self.clip_sample_range,
            "set_alpha_to_one": True,
            "steps_offset": 0,
            "timestep_spacing": str(self.timestep_spacing),
        }

    def to_dict(self) -> dict:
        """Plain values (enums as strings), e.g. for a model card."""
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), enum.Enum) else v) for f in fields(self)}
