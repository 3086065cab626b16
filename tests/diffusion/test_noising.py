"""Inpainting noising and the masked loss of eq. 1, against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from edidub_engine.diffusion import (
    DiffusionConfig,
    LossReduction,
    MaskedDiffusion,
    masked_diffusion_loss,
    null_cond_for,
)
from edidub_engine.errors import InvalidArgumentError

CLUSTERS = 8

def test_add_noise_only_inside_the_mask(diffusion, make_clip):
    x0, mask, _ = make_clip(5)
    noise = torch.randn_like(x0)
    t = torch.tensor([10, 700])
    x_t = diffusion.add_noise(x0, noise, t, mask)
    outside = ~mask.bool().expand_as(x0)
    assert torch.equal(x_t[outside], x0[outside])  # bit for bit
    abar = diffusion.alphas_cumprod[t].view(-1, 1, 1, 1, 1)
    expected = abar.sqrt() * x0 + (1 - abar).sqrt() * noise
    torch.testing.assert_close(x_t[~outside], expected.expand_as(x0)[~outside])


def _tiny_case():
    # N=2, C=1, T=1, H=1, W=3; sample 0 masks two pixels, sample 1 one pixel.
    x0 = torch.tensor([0.5, -0.5, 0.25, 0.0, 1.0, -1.0]).view(2, 1, 1, 1, 3)
    mask = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0]).view(2, 1, 1, 1, 3)
    noise = torch.tensor([1.0, -1.0, 2.0, 0.5, 0.5, -2.0]).view(2, 1, 1, 1, 3)
    pred = torch.tensor([0.0, 0.0, 9.0, 7.0, 1.5, 9.0]).view(2, 1, 1, 1, 3)
    cond = {"units": torch.zeros(2, 1, 2, dtype=torch.long)}
    return x0, mask, noise, pred, cond


def test_masked_loss_equals_hand_computation():
    x0, mask, noise, pred, cond = _tiny_case()
    seen = {}

    def denoiser(x_t, timestep, c):
        seen["x_t"], seen["t"], seen["mask"] = x_t, timestep, c["mask"]
        return pred

    d = MaskedDiffusion(config=DiffusionConfig(cond_drop_prob=0.0))
    t = torch.tensor([100, 900])
    loss = d.loss(denoiser, x0, mask, cond, timesteps=t, noise=noise)
    # per sample: ((1-0)^2 + (-1-0)^2) / 2 = 1 ; (0.5-1.5)^2 / 1 = 1 → mean 1
    assert loss.item() == pytest.approx(1.0, abs=1e-6)
    per_batch = masked_diffusion_loss(
        denoiser, x0, mask, cond, timesteps=t, noise=noise, reduction=LossReduction.PER_BATCH
    )
    assert per_batch.item() == pytest.approx(3.0 / 3.0, abs=1e-6)  # (1 + 1 + 1) / 3 masked elements
    # the denoiser saw eq. 1's x_t, the timesteps and the mask
    abar = d.alphas_cumprod[t].view(2, 1, 1, 1, 1)
    expected = torch.where(mask.bool(), abar.sqrt() * x0 + (1 - abar).sqrt() * noise, x0)
    torch.testing.assert_close(seen["x_t"], expected)
    assert torch.equal(seen["t"], t) and torch.equal(seen["mask"], mask)


def test_masked_loss_ignores_errors_outside_the_mask():
    x0, mask, noise, pred, cond = _tiny_case()
    t = torch.tensor([3, 4])
    a = masked_diffusion_loss(lambda x, ts, c: pred, x0, mask, cond, timesteps=t, noise=noise)
    wild = torch.where(mask.bool(), pred, torch.full_like(pred, 1e6))
    b = masked_diffusion_loss(lambda x, ts, c: wild, x0, mask, cond, timesteps=t, noise=noise)
    assert torch.equal(a, b)


def test_loss_weights_each_face_the_same_per_sample():
    # sample 0: big mask, error 1 everywhere; sample 1: one pixel, error 3 → per-sample mean (1 + 9) / 2
    x0 = torch.zeros(2, 1, 1, 2, 2)
    mask = torch.zeros_like(x0)
    mask[0] = 1
    mask[1, ..., 0, 0] = 1
    noise = torch.zeros_like(x0)
    pred = torch.cat([torch.ones(1, 1, 1, 2, 2), torch.full((1, 1, 1, 2, 2), 3.0)])
    cond = {"units": torch.zeros(2, 1, 2, dtype=torch.long)}
    t = torch.tensor([0, 0])
    sample = masked_diffusion_loss(lambda *a: pred, x0, mask, cond, timesteps=t, noise=noise)
    batch = masked_diffusion_loss(
        lambda *a: pred, x0, mask, cond, timesteps=t, noise=noise, reduction=LossReduction.PER_BATCH
    )
    assert sample.item() == pytest.approx(5.0)
    assert batch.item() == pytest.approx((4 * 1 + 9) / 5)


def test_loss_draws_timesteps_noise_and_drop_from_the_generator_and_has_gradients(make_clip):
    x0, mask, units = make_clip(6)
    cond = {"units": units}
    null = null_cond_for(cond, null_unit=CLUSTERS)
    weight = torch.tensor(0.5, requires_grad=True)
    seen = []

    def denoiser(x_t, timestep, c):
        seen.append((timestep.clone(), c["units"].clone()))
        return weight * x_t

    d = MaskedDiffusion(config=DiffusionConfig(cond_drop_prob=1.0))
    a = d.loss(denoiser, x0, mask, cond, null_cond=null, generator=torch.Generator().manual_seed(3))
    b = d.loss(denoiser, x0, mask, cond, null_cond=null, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(seen[0][0], seen[1][0])
    assert bool(((seen[0][0] >= 0) & (seen[0][0] < 1000)).all())
    assert bool((seen[0][1] == CLUSTERS).all())  # dropped to the null unit with probability 1
    a.backward()
    assert weight.grad is not None and math.isfinite(weight.grad.item())
    d.loss(denoiser, x0, mask, cond, null_cond=null, cond_drop_prob=0.0)
    assert torch.equal(seen[-1][1], units)


def test_cond_dropout_needs_a_null_cond(make_clip):
    x0, mask, units = make_clip(3)
    with pytest.raises(InvalidArgumentError):
        MaskedDiffusion(config=DiffusionConfig(cond_drop_prob=0.1)).loss(lambda x, t, c: x, x0, mask, {"units": units})


def test_non_binary_mask_is_refused(make_clip):
    x0, mask, units = make_clip(3)
    with pytest.raises(InvalidArgumentError):
        masked_diffusion_loss(lambda x, t, c: x, x0, mask * 0.5, {"units": units})


def test_max_timestep_trains_only_the_levels_a_partial_start_visits(make_clip):
    x0, mask, units = make_clip(6, batch=64)
    seen = []

    def denoiser(x_t, timestep, c):
        seen.append(timestep.clone())
        return x_t * 0

    d = MaskedDiffusion(config=DiffusionConfig(cond_drop_prob=0.0))
    d.loss(denoiser, x0, mask, {"units": units}, generator=torch.Generator().manual_seed(0), max_timestep=300)
    assert int(seen[0].max()) < 300 and int(seen[0].min()) >= 0
    d.loss(denoiser, x0, mask, {"units": units}, generator=torch.Generator().manual_seed(0))
    assert int(seen[1].max()) >= 300  # 64 draws over [0, 1000) reach past 300
    with pytest.raises(InvalidArgumentError, match="max_timestep"):
        d.loss(denoiser, x0, mask, {"units": units}, max_timestep=0)
