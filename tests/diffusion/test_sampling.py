"""DDIM inversion and guided sampling with MultiDiffusion, against an analytic stand-in model."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion, Phase, guided_epsilon, null_cond_for
from edidub_engine.errors import CancelledError, InvalidArgumentError

# DDIM with the straight-line model is exact except for the very first inversion step, where the clean
# input (ᾱ = 1) can only be labelled t = 0 (ᾱ₀ = 0.99996): that leaves up to ~6e-4 for gains A ≤ 3.75
# (float32 adds ~1e-6). Telling the network t instead of the level its input is at (diffusers' inversion
# pipelines do) leaves ~4e-2.
ROUND_TRIP_ATOL = 1e-3


def _outside(mask, like):
    return ~mask.bool().expand_as(like)


@pytest.mark.parametrize("frames", [10, 24, 37])
def test_inversion_then_sampling_returns_the_input(unguided, straight, make_clip, frames):
    x0, mask, units = make_clip(frames)
    cond = {"units": units}
    latent = unguided.invert(straight(unguided), x0, mask, cond)
    inside = ~_outside(mask, x0)
    assert (latent - x0)[inside].abs().mean() > 0.5  # the latent really is far from the input
    out = unguided.sample(straight(unguided), x0, mask, cond, latent=latent)
    torch.testing.assert_close(out, x0, rtol=0, atol=ROUND_TRIP_ATOL)
    # other speech units → another trajectory → another result
    other = unguided.sample(straight(unguided), x0, mask, {"units": (units + 3) % 8}, latent=latent)
    assert (other - x0)[inside].abs().max() > 0.05


def test_pixels_outside_the_mask_are_the_input_after_every_step(diffusion, straight, make_clip, null_unit):
    x0, mask, units = make_clip(37)
    cond = {"units": units}
    outside = _outside(mask, x0)
    steps = list(diffusion.iter_invert(straight(diffusion), x0, mask, cond))
    latent = steps[-1].sample
    null = null_cond_for(cond, null_unit=null_unit)
    steps += list(diffusion.iter_sample(straight(diffusion), x0, mask, cond, null, latent=latent))
    assert len(steps) == 100
    for step in steps:
        assert torch.equal(step.sample[outside], x0[outside])
    assert (steps[-1].sample - x0)[~outside].abs().max() > 0  # and inside something was generated


def test_guidance_scale_one_is_the_conditional_prediction(straight, make_clip, null_unit):
    x0, mask, units = make_clip(24)
    cond = {"units": units}
    d = MaskedDiffusion(config=DiffusionConfig(guidance_scale=1.0))
    den = straight(d)
    timestep = torch.full((2,), 500)
    eps = guided_epsilon(den, x0, timestep, cond, {"units": torch.full_like(units, null_unit)}, 1.0)
    assert torch.equal(eps, den(x0, timestep, cond))
    assert den.calls[0]["rows"] == 2  # the null branch was skipped

    latent = torch.randn_like(x0)
    guided = straight(d)
    with_null = d.sample(guided, x0, mask, cond, null_cond_for(cond, null_unit=null_unit), latent=latent)
    plain = d.sample(straight(d), x0, mask, cond, latent=latent)
    assert torch.equal(with_null, plain)
    assert all(call["rows"] == 2 for call in guided.calls)


def test_guidance_is_one_batched_call_with_cond_then_null(straight, make_clip, null_unit):
    x0, _, units = make_clip(24)
    cond = {"units": units}
    null = {**cond, "units": torch.full_like(units, null_unit)}
    den = straight(MaskedDiffusion())
    timestep = torch.full((2,), 300)
    eps = guided_epsilon(den, x0, timestep, cond, null, 5.0)
    assert len(den.calls) == 1 and den.calls[0]["rows"] == 4
    assert torch.equal(den.calls[0]["cond"]["units"][:2], units)
    assert bool((den.calls[0]["cond"]["units"][2:] == null_unit).all())
    e_cond, e_null = den(x0, timestep, cond), den(x0, timestep, null)
    torch.testing.assert_close(eps, e_null + 5.0 * (e_cond - e_null))
    with pytest.raises(InvalidArgumentError):
        MaskedDiffusion().sample(den, x0, torch.ones_like(x0[:, :1]), cond)  # scale 5 needs a null cond


@pytest.mark.parametrize("frames", [10, 24])
def test_one_window_equals_plain_ddim_sampling(diffusion, straight, make_clip, null_unit, frames):
    """With a single window MultiDiffusion is plain masked DDIM: diffusers' loop, x0 re-imposed each step."""
    x0, mask, units = make_clip(frames)
    cond = {"units": units, "mask": mask}
    null = {**cond, "units": torch.full_like(units, null_unit)}
    latent = torch.randn_like(x0)
    den = straight(diffusion)

    scheduler = DDIMScheduler.from_config(DiffusionConfig().scheduler_config())
    scheduler.set_timesteps(50)
    x = torch.where(mask.bool(), latent, x0)
    for t in scheduler.timesteps:
        both = {k: torch.cat([cond[k], null[k]]) for k in cond}
        e_cond, e_null = den(torch.cat([x, x]), torch.full((4,), int(t)), both).chunk(2)
        eps = e_null + 5.0 * (e_cond - e_null)
        x = torch.where(mask.bool(), scheduler.step(eps, t, x).prev_sample, x0)

    out = diffusion.sample(den, x0, mask, {"units": units}, {"units": null["units"]}, latent=latent)
    assert torch.equal(out, x)


def test_overlapping_windows_average_to_the_whole_clip_result_for_a_per_frame_model(straight, make_clip):
    """A model without temporal context gives every window the same per-frame update, so the average is exact."""
    x0, mask, units = make_clip(37)
    cond = {"units": units}
    latent = torch.randn_like(x0)
    windowed = MaskedDiffusion(config=DiffusionConfig(guidance_scale=1.0))
    whole = MaskedDiffusion(config=DiffusionConfig(guidance_scale=1.0, window_frames=64, window_stride=64))
    den = straight(windowed)
    a = windowed.sample(den, x0, mask, cond, latent=latent)
    assert {call["rows"] for call in den.calls} == {6}  # 3 windows × batch 2 in one call per step
    b = whole.sample(straight(whole), x0, mask, cond, latent=latent)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)  # float32 rounding of the 1/3 weights over 50 steps


def test_max_batch_splits_calls_without_changing_the_result(straight, make_clip, null_unit):
    x0, mask, units = make_clip(37)
    cond = {"units": units}
    null = null_cond_for(cond, null_unit=null_unit)
    latent = torch.randn_like(x0)
    big = MaskedDiffusion(config=DiffusionConfig(inference_steps=5))
    small = MaskedDiffusion(config=DiffusionConfig(inference_steps=5, max_batch=4))
    den_big, den_small = straight(big), straight(small)
    a = big.sample(den_big, x0, mask, cond, null, latent=latent)
    b = small.sample(den_small, x0, mask, cond, null, latent=latent)
    assert [c["rows"] for c in den_big.calls] == [12] * 5  # 3 windows × (cond + null) × batch 2
    assert [c["rows"] for c in den_small.calls] == [4] * 15
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_windows_get_their_own_slice_of_every_cond_entry(make_clip):
    x0, mask, units = make_clip(37)
    frame_ids = torch.arange(37).view(1, 37, 1).expand(2, 37, 2).contiguous()
    reference = torch.arange(37, dtype=torch.float32).view(1, 1, 37, 1, 1).expand(2, 3, 37, 4, 4).contiguous()
    speaker = torch.tensor([[1.0], [2.0]])  # no time axis: shared by every window
    seen = []

    def denoiser(x_t, timestep, c):
        assert torch.equal(c["units"][:, :, 0].float(), c["reference"][:, 0, :, 0, 0])
        assert torch.equal(c["speaker"], speaker.repeat(x_t.shape[0] // 2, 1))
        assert c["mask"].shape == (x_t.shape[0], 1, *x_t.shape[2:])
        seen.append(c["units"][:, 0, 0].tolist())
        return torch.zeros_like(x_t)

    d = MaskedDiffusion(config=DiffusionConfig(guidance_scale=1.0, inference_steps=2))
    d.sample(denoiser, x0, mask, {"units": frame_ids, "reference": reference, "speaker": speaker})
    assert seen[0] == [0, 0, 12, 12, 13, 13]  # window starts, batch of 2 each


def test_progress_reports_every_step_and_cancellation_stops_between_steps(unguided, straight, make_clip):
    x0, mask, units = make_clip(24)
    cond = {"units": units}
    reports = []
    unguided.invert(straight(unguided), x0, mask, cond, progress=lambda done, total: reports.append((done, total)))
    assert reports == [(i, 50) for i in range(1, 51)]

    den = straight(unguided)
    asked = []

    def should_cancel():
        asked.append(len(den.calls))
        return len(asked) > 3

    with pytest.raises(CancelledError) as err:
        unguided.sample(den, x0, mask, cond, should_cancel=should_cancel)
    assert len(den.calls) == 3 and asked == [0, 1, 2, 3]  # checked before each step, never mid-step
    assert err.value.details["steps_done"] == 3 and err.value.code == "CANCELLED"
    # never cancelled once everything is done
    done = []
    unguided.sample(
        straight(unguided), x0, mask, cond, progress=lambda d, t: done.append(d), should_cancel=lambda: len(done) >= 50
    )
    assert done[-1] == 50


def test_generator_form_yields_each_step_with_its_timestep(unguided, straight, make_clip):
    x0, mask, units = make_clip(24)
    den = straight(unguided)
    steps = list(unguided.iter_sample(den, x0, mask, {"units": units}, generator=torch.Generator().manual_seed(0)))
    assert [s.timestep for s in steps] == list(range(980, -1, -20))
    assert all(s.phase is Phase.SAMPLE for s in steps) and steps[-1].done == steps[-1].total == 50
    again = unguided.sample(straight(unguided), x0, mask, {"units": units}, generator=torch.Generator().manual_seed(0))
    assert torch.equal(steps[-1].sample, again)


def test_inputs_are_checked_before_any_step(unguided, make_clip):
    x0, mask, units = make_clip(24)
    with pytest.raises(InvalidArgumentError):
        unguided.iter_sample(lambda *a: None, x0, mask, {"units": units[:, :20]})
    with pytest.raises(InvalidArgumentError):
        unguided.iter_invert(lambda *a: None, x0[0], mask, {"units": units})


class _Oracle:
    """ε of the one right answer ``truth``: DDIM lands on it from any start and any noise level."""

    def __init__(self, diffusion, truth):
        self.abar, self.truth, self.first_inputs = diffusion.alphas_cumprod.double(), truth, []

    def __call__(self, x_t, timestep, cond):
        if not self.first_inputs:
            self.first_inputs.append((x_t.clone(), timestep.clone()))
        a = self.abar[timestep].view(-1, 1, 1, 1, 1).to(x_t.dtype)
        return (x_t - a.sqrt() * self.truth) / (1 - a).sqrt()


@pytest.mark.parametrize("strength", [1.0, 0.5, 0.2])
def test_a_partial_start_noises_init_to_its_first_step_and_runs_only_the_rest(unguided, make_clip, strength):
    x0, mask, units = make_clip(12)
    truth = x0.flip(-1)  # the region to restore differs from the source inside the mask
    init = truth * 0.5  # a blurred-down estimate, like a bicubic upsample
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(2))
    oracle = _Oracle(unguided, torch.where(mask.bool(), truth, x0))
    steps = list(unguided.iter_sample(oracle, x0, mask, {"units": units}, latent=noise, init=init, strength=strength))
    kept = round(50 * strength)
    assert len(steps) == kept and [s.timestep for s in steps] == list(range(980, -1, -20))[50 - kept:]
    x_first, t_first = oracle.first_inputs[0]
    assert int(t_first[0]) == steps[0].timestep
    if strength < 1:
        a = unguided.alphas_cumprod[steps[0].timestep]
        expected = a.sqrt() * init + (1 - a).sqrt() * noise
        assert torch.allclose(x_first[mask.expand_as(x0).bool()], expected[mask.expand_as(x0).bool()], atol=1e-5)
    assert torch.allclose(steps[-1].sample, torch.where(mask.bool(), truth, x0), atol=1e-4)
    assert torch.equal(steps[-1].sample[_outside(mask, x0)], x0[_outside(mask, x0)])


def test_a_partial_start_needs_init_and_a_strength_in_range(unguided, make_clip):
    x0, mask, units = make_clip(12)
    with pytest.raises(InvalidArgumentError, match="init"):
        unguided.iter_sample(lambda *a: None, x0, mask, {"units": units}, strength=0.4)
    for bad in (0.0, 1.5):
        with pytest.raises(InvalidArgumentError, match="strength"):
            unguided.iter_sample(lambda *a: None, x0, mask, {"units": units}, init=x0, strength=bad)
    with pytest.raises(InvalidArgumentError, match="init has shape"):
        unguided.iter_sample(lambda *a: None, x0, mask, {"units": units}, init=x0[:, :, :5], strength=0.4)
