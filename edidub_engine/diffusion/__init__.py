"""Masked diffusion for EdiDub: inpainting noising and loss, DDIM inversion and guided sampling,
MultiDiffusion over time and long-shot sections.

The network is never imported here: every entry point takes a denoiser
callable ``denoiser(x_t, timestep, cond) -> ε``. Video tensors are
``[N, C, T, H, W]`` in [-1, 1], masks ``[N, 1, T, H, W]`` with 1 = the region
to generate.
"""

from .conditioning import (
    Cond,
    Denoiser,
    concat_conds,
    guided_epsilon,
    merge_null_cond,
    null_cond_for,
    slice_cond,
    time_axis,
)
from .config import BetaSchedule, DiffusionConfig, LossReduction, Phase, TimestepSpacing
from .noising import blend_outside_mask, masked_add_noise, masked_diffusion_loss
from .process import DiffusionStep, MaskedDiffusion
from .residual import from_residual, to_residual
from .windows import Section, next_section, plan_sections, window_starts, window_weights

__all__ = [
    "BetaSchedule",
    "Cond",
    "Denoiser",
    "DiffusionConfig",
    "DiffusionStep",
    "LossReduction",
    "MaskedDiffusion",
    "Phase",
    "Section",
    "TimestepSpacing",
    "blend_outside_mask",
    "concat_conds",
    "from_residual",
    "guided_epsilon",
    "masked_add_noise",
    "masked_diffusion_loss",
    "merge_null_cond",
    "next_section",
    "null_cond_for",
    "plan_sections",
    "slice_cond",
    "time_axis",
    "to_residual",
    "window_starts",
    "window_weights",
]
