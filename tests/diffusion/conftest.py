"""Analytic stand-ins for the network, so the diffusion process is tested without one.

``StraightDenoiser`` is exact for a data model whose DDIM trajectories are
straight lines: with ``y = x/√ᾱ`` and ``σ = √((1−ᾱ)/ᾱ)``, ``ε̂(x, t) =
A·x / (√ᾱ + A·√(1−ᾱ))`` is constant (``A·x0``) along ``y = x0 + σ·A·x0``, so a
DDIM step — forward or inverse, any step size — lands exactly on the
trajectory. ``A`` depends on the speech units, so the conditioning matters;
the inverted latent is far from the input (latent ≈ A·x0, A ≥ 2), so a round
trip is not trivial.
"""

from __future__ import annotations

import pytest
import torch

from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion

CLUSTERS = 8  # unit indices 0..7; 8 is the null unit


class StraightDenoiser:
    """Exact ε for straight-line trajectories; records every call's batch size and cond."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        self.alphas_cumprod = alphas_cumprod.double()
        self.calls: list[dict] = []

    def gain(self, units: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        # A per frame from the first unit of the frame, in [2, 3.75]; the null unit gives A = 4.
        return (2.0 + units[..., 0].to(dtype) / (CLUSTERS / 2))[:, None, :, None, None]

    def __call__(self, x_t, timestep, cond):
        self.calls.append({"rows": x_t.shape[0], "timestep": timestep.clone(), "cond": dict(cond)})
        abar = self.alphas_cumprod.to(x_t.device)[timestep].view(-1, 1, 1, 1, 1).to(x_t.dtype)
        gain = self.gain(cond["units"], x_t.dtype)
        return gain * x_t / (abar.sqrt() + gain * (1 - abar).sqrt())


def _make_clip(frames: int, *, batch: int = 2, channels: int = 3, size: int = 4, seed: int = 0, dtype=torch.float32):
    """x0 [N, C, T, H, W] uniform in [-1, 1], lower-half mask [N, 1, T, H, W], units [N, T, 2]."""
    g = torch.Generator().manual_seed(seed)
    x0 = (torch.rand(batch, channels, frames, size, size, generator=g) * 2 - 1).to(dtype)
    mask = torch.zeros(batch, 1, frames, size, size, dtype=dtype)
    mask[..., size // 2 :, :] = 1
    units = torch.randint(0, CLUSTERS, (batch, frames, 2), generator=g)
    return x0, mask, units


@pytest.fixture
def diffusion() -> MaskedDiffusion:
    return MaskedDiffusion(config=DiffusionConfig())


@pytest.fixture
def unguided() -> MaskedDiffusion:
    return MaskedDiffusion(config=DiffusionConfig(guidance_scale=1.0))


@pytest.fixture
def make_clip():
    """``make_clip(frames, batch=2, …)`` → x0, mask, units (see :func:`_make_clip`)."""
    return _make_clip


@pytest.fixture
def null_unit() -> int:
    return CLUSTERS


@pytest.fixture
def straight():
    """``straight(diffusion)`` → a fresh :class:`StraightDenoiser` on that schedule."""
    return lambda diffusion: StraightDenoiser(diffusion.alphas_cumprod)
