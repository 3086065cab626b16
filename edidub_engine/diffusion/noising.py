"""Inpainting noising and the masked training loss (paper eq. 1).

Noise is added only inside the mask; outside it the network sees the clean
frames, at training and at inference alike, which is what makes the model an
inpainter rather than a generator.
"""

from __future__ import annotations

import functools

import torch
from diffusers import DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor
from torch import Tensor

from edidub_engine.errors import InvalidArgumentError

from .conditioning import Cond, Denoiser, drop_cond, merge_null_cond, validate_cond, with_mask
from .config import DiffusionConfig, LossReduction

__all__ = ["blend_outside_mask", "masked_add_noise", "masked_diffusion_loss", "validate_video_and_mask"]


@functools.cache
def _default_alphas_cumprod() -> Tensor:
    return DDIMScheduler.from_config(DiffusionConfig().scheduler_config()).alphas_cumprod


def validate_video_and_mask(x0: Tensor, mask: Tensor) -> None:
    """``x0`` is ``[N, C, T, H, W]`` floating point; ``mask`` is ``[N, 1, T, H, W]`` (or x0's shape) of 0s and 1s."""
    if not isinstance(x0, Tensor) or x0.ndim != 5 or not x0.is_floating_point():
        raise InvalidArgumentError(
            f"video must be a float tensor [N, C, T, H, W], got {getattr(x0, 'shape', type(x0).__name__)}"
        )
    n, _, t, h, w = x0.shape
    if not isinstance(mask, Tensor) or mask.ndim != 5 or mask.shape[1] not in (1, x0.shape[1]) or (
        mask.shape[0], *mask.shape[2:]) != (n, t, h, w):
        raise InvalidArgumentError(
            f"mask of shape {getattr(mask, 'shape', None)} does not fit video {tuple(x0.shape)}",
            hint="masks are [N, 1, T, H, W]",
        )
    if mask.device != x0.device:
        raise InvalidArgumentError(f"mask is on {mask.device}, video on {x0.device}")
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise InvalidArgumentError("mask holds values other than 0 and 1", hint="binarise the mask (1 = generate)")


def blend_outside_mask(x: Tensor, x0: Tensor, mask: Tensor) -> Tensor:
    """``x`` inside the mask, ``x0`` outside — bit for bit (a select, not ``m·x + (1−m)·x0``)."""
    return torch.where(mask.bool(), x, x0)


def masked_add_noise(x0: Tensor, noise: Tensor, timesteps: Tensor, mask: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """``x_t = m·(√ᾱ_t x0 + √(1−ᾱ_t) ε) + (1−m)·x0``; x0, noise ``[N, C, T, H, W]``, int64 ``timesteps`` ``[N]``."""
    abar = alphas_cumprod.to(device=x0.device, dtype=torch.float32)[timesteps.to(x0.device)]
    abar = abar.view(-1, 1, 1, 1, 1)
    noisy = (abar.sqrt() * x0.float() + (1.0 - abar).sqrt() * noise.float()).to(x0.dtype)
    return blend_outside_mask(noisy, x0, mask)


def _masked_mse(eps: Tensor, target: Tensor, mask: Tensor, reduction: LossReduction) -> Tensor:
    mask = mask.expand_as(target).to(target.dtype)
    err = mask * (target - eps) ** 2
    dims = tuple(range(1, err.ndim))
    if reduction is LossReduction.PER_BATCH:
        return err.sum() / mask.sum().clamp_min(1.0)
    # A sample without masked pixels contributes 0 rather than 0/0.
    return (err.sum(dims) / mask.sum(dims).clamp_min(1.0)).mean()


def masked_diffusion_loss(
    denoiser: Denoiser,
    x0: Tensor,
    mask: Tensor,
    cond: Cond,
    *,
    timesteps: Tensor | None = None,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    null_cond: Cond | None = None,
    cond_drop_prob: float = 0.0,
    alphas_cumprod: Tensor | None = None,
    reduction: LossReduction = LossReduction.PER_SAMPLE,
    mask_key: str | None = "mask",
    max_timestep: int | None = None,
) -> Tensor:
    """Eq. 1: ``Σ m·(ε − ε̂)² / Σ m`` for one training batch; a scalar with gradients.

    ``x0`` ``[N, C, T, H, W]`` in [-1, 1], ``mask`` ``[N, 1, T, H, W]``. Draws
    (in this order, from ``generator``) what is not given: ``timesteps`` uniform
    in ``[0, max_timestep or len(alphas_cumprod))``, ``noise`` standard normal, and which samples
    lose their conditioning (probability ``cond_drop_prob``, replaced by
    ``null_cond``'s entries — the null unit — to train classifier-free
    guidance). The count ``Σ m`` counts masked elements over channels too, so
    the loss is a mean squared error over the masked region (eq. 1 divided by
    C); ``reduction`` says whether per sample or per batch. ``alphas_cumprod``
    defaults to the paper's cosine 1000-step schedule. ``cond[mask_key]`` is
    set to ``mask``. ``max_timestep`` trains only the noise levels a sampler that starts
    part-way (``strength`` < 1, see :meth:`.MaskedDiffusion.iter_sample`) ever visits.
    """
    validate_video_and_mask(x0, mask)
    n = x0.shape[0]
    validate_cond(cond, batch=n, frames=x0.shape[2])
    if alphas_cumprod is None:
        alphas_cumprod = _default_alphas_cumprod()
    train_steps = alphas_cumprod.shape[0]
    rng_device = generator.device if generator is not None else x0.device
    if max_timestep is not None and not 1 <= max_timestep <= train_steps:
        raise InvalidArgumentError(f"max_timestep={max_timestep} must be in [1, {train_steps}]")
    if timesteps is None:
        timesteps = torch.randint(0, max_timestep or train_steps, (n,), generator=generator, device=rng_device)
    timesteps = timesteps.to(device=x0.device, dtype=torch.long)
    if timesteps.shape != (n,) or bool(((timesteps < 0) | (timesteps >= train_steps)).any()):
        raise InvalidArgumentError(f"timesteps must be {n} integers in [0, {train_steps})")
    if noise is None:
        noise = randn_tensor(tuple(x0.shape), generator=generator, device=x0.device, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise InvalidArgumentError(f"noise has shape {tuple(noise.shape)}, video {tuple(x0.shape)}")

    cond = with_mask(cond, mask, mask_key)
    if cond_drop_prob > 0.0:
        if null_cond is None:
            raise InvalidArgumentError(
                f"cond_drop_prob={cond_drop_prob} needs a null_cond to drop to",
                hint="pass null_cond={'units': <units filled with the null unit>} or cond_drop_prob=0",
            )
        null = merge_null_cond(cond, null_cond)
        drop = torch.rand((n,), generator=generator, device=rng_device) < cond_drop_prob
        cond = drop_cond(cond, {k: null[k] for k in null_cond}, drop)

    x_t = masked_add_noise(x0, noise, timesteps, mask, alphas_cumprod)
    eps = denoiser(x_t, timesteps, cond)
    if eps.shape != x0.shape:
        raise InvalidArgumentError(f"denoiser returned shape {tuple(eps.shape)} for input {tuple(x0.shape)}")
    return _masked_mse(eps, noise, mask, reduction)
