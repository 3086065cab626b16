"""A whole shot: sections with carry-over, inversion with the original units, guided sampling with the dub units."""

from __future__ import annotations

import pytest
import torch

from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion, Phase, null_cond_for
from edidub_engine.errors import CancelledError

FRAMES = 250  # three sections: [0, 120), [108, 228) and [216, 250), each after the first carrying 12 frames


def _shot(make_clip, null_unit):
    x0, mask, units = make_clip(FRAMES, seed=1)
    original = {"units": units}
    dub = {"units": (units + 3) % null_unit}
    return x0, mask, original, dub, null_cond_for(dub, null_unit=null_unit)


def test_carry_over_frames_are_the_previous_output_exactly(diffusion, straight, make_clip, null_unit):
    x0, mask, original, dub, null = _shot(make_clip, null_unit)
    sections = diffusion.plan_sections(FRAMES)
    assert [(s.start, s.end, s.carry) for s in sections] == [(0, 120, 0), (108, 228, 12), (216, 250, 12)]
    finished = []
    outside = ~mask.bool().expand_as(x0)
    for step in diffusion.iter_edit(straight(diffusion), x0, mask, dub, null, original_cond=original):
        section = step.section
        # pixels outside the mask are the section's input after every step: the original (inversion
        # always runs on the original section), or, while sampling, the carried output
        expected = x0[:, :, section.start : section.end].clone()
        if finished and step.phase is Phase.SAMPLE:
            expected[:, :, : section.carry] = finished[-1][:, :, section.start : section.new_start]
        inside = ~outside[:, :, section.start : section.end].clone()
        inside[:, :, : section.carry] = False  # carried frames are under a zero mask
        assert torch.equal(step.sample[~inside], expected[~inside])
        if step.output is not None:
            finished.append(step.output)
    assert len(finished) == 3
    for prev, section, result in zip(finished, sections[1:], finished[1:]):
        # the carried frames came out as they went in, and earlier frames are never touched again
        assert torch.equal(result[:, :, : section.new_start], prev[:, :, : section.new_start])
    out = finished[-1]
    assert torch.equal(out[outside], x0[outside])
    assert (out - x0)[~outside].abs().max() > 0.05  # the dub units changed the mouth region
    assert torch.equal(diffusion.edit(straight(diffusion), x0, mask, dub, null, original_cond=original), out)


def test_edit_with_the_original_units_reproduces_the_shot(unguided, straight, make_clip, null_unit):
    x0, mask, original, _, _ = _shot(make_clip, null_unit)
    out = unguided.edit(straight(unguided), x0, mask, original, original_cond=original)
    torch.testing.assert_close(out, x0, rtol=0, atol=1e-3)  # see ROUND_TRIP_ATOL in test_sampling


def test_one_section_edit_is_inversion_then_guided_sampling(diffusion, straight, make_clip, null_unit):
    x0, mask, units = make_clip(37)
    original, dub = {"units": units}, {"units": (units + 5) % null_unit}
    null = null_cond_for(dub, null_unit=null_unit)
    latent = diffusion.invert(straight(diffusion), x0, mask, original)
    expected = diffusion.sample(straight(diffusion), x0, mask, dub, null, latent=latent)
    assert torch.equal(diffusion.edit(straight(diffusion), x0, mask, dub, null, original_cond=original), expected)


def test_inversion_sees_the_original_units_and_sampling_the_dub_with_null(diffusion, straight, make_clip, null_unit):
    x0, mask, units = make_clip(24)
    original, dub = {"units": units}, {"units": (units + 5) % null_unit}
    den = straight(diffusion)
    null = null_cond_for(dub, null_unit=null_unit)
    phases = [step.phase for step in diffusion.iter_edit(den, x0, mask, dub, null, original_cond=original)]
    assert phases == [Phase.INVERT] * 50 + [Phase.SAMPLE] * 50
    inversion, sampling = den.calls[:50], den.calls[50:]
    assert all(c["rows"] == 2 and torch.equal(c["cond"]["units"], units) for c in inversion)
    for c in sampling:
        assert c["rows"] == 4 and torch.equal(c["cond"]["units"][:2], dub["units"])
        assert bool((c["cond"]["units"][2:] == null_unit).all())
    assert [int(c["timestep"][0]) for c in inversion] == [0, *range(0, 961, 20)]  # the level of each input
    assert [int(c["timestep"][0]) for c in sampling] == list(range(980, -1, -20))


def test_the_network_sees_a_zero_mask_on_carried_frames(straight, make_clip, null_unit):
    config = DiffusionConfig(inference_steps=2, inversion_steps=2, section_frames=48, carry_frames=24)
    d = MaskedDiffusion(config=config)
    x0, mask, units = make_clip(60)
    cond = {"units": units}
    den = straight(d)
    steps = list(d.iter_edit(den, x0, mask, cond, null_cond_for(cond, null_unit=null_unit), original_cond=cond))
    assert [(s.start, s.end, s.carry) for s in d.plan_sections(60)] == [(0, 48, 0), (24, 60, 24)]
    assert [s.done for s in steps] == list(range(1, 9)) and steps[-1].total == 8
    # section 2 has windows [0, 24) and [12, 36) of its 36 frames; the first lies wholly in the carry-over.
    # Rows: inversion [w0 n0, w0 n1, w1 n0, w1 n1]; guided sampling the same for cond, then for null.
    inversion, sampling = den.calls[4:6], den.calls[6:]
    for call in inversion:
        assert not call["cond"]["mask"][:2].any() and call["cond"]["mask"][2:].any()
    for call in sampling:
        masks = call["cond"]["mask"]
        assert not masks[:2].any() and not masks[4:6].any() and masks[2:4].any()


def test_edit_can_be_cancelled_between_steps(diffusion, straight, make_clip, null_unit):
    x0, mask, original, dub, null = _shot(make_clip, null_unit)
    seen = []
    with pytest.raises(CancelledError):
        diffusion.edit(
            straight(diffusion), x0, mask, dub, null, original_cond=original,
            progress=lambda done, total: seen.append((done, total)), should_cancel=lambda: len(seen) == 120,
        )
    assert seen == [(i, 300) for i in range(1, 121)]


def test_cached_inversions_give_the_same_shot_and_skip_the_inversion_steps(diffusion, straight, make_clip, null_unit):
    x0, mask, original, dub, null = _shot(make_clip, null_unit)
    uncached = diffusion.edit(straight(diffusion), x0, mask, dub, null, original_cond=original)
    latents: dict = {}
    first = list(diffusion.iter_edit(straight(diffusion), x0, mask, dub, null, original_cond=original, latents=latents))
    assert sorted(latents) == [0, 1, 2]
    assert torch.equal(first[-1].output, uncached)
    # a second dub of the same shot into another "language": the inversion is reused, not redone
    other = {"units": (original["units"] + 5) % null_unit}
    other_null = null_cond_for(other, null_unit=null_unit)
    again = list(diffusion.iter_edit(straight(diffusion), x0, mask, other, other_null, original_cond=original, latents=latents))
    assert all(step.phase is Phase.SAMPLE for step in again)
    assert again[-1].total == 3 * diffusion.config.inference_steps
    assert torch.equal(again[-1].output, diffusion.edit(straight(diffusion), x0, mask, other, other_null, original_cond=original))


def test_streaming_section_by_section_equals_the_whole_shot_edit(diffusion, straight, make_clip, null_unit):
    """What the renderer does for long shots: each section cut out, its carry taken from the previous result."""
    from edidub_engine.diffusion import next_section, slice_cond

    x0, mask, original, dub, null = _shot(make_clip, null_unit)
    whole_latents: dict = {}
    whole = diffusion.edit(straight(diffusion), x0, mask, dub, null, original_cond=original, latents=whole_latents)
    config = diffusion.config
    previous, output, pieces = None, None, []
    while (section := next_section(previous, FRAMES, finished=True, section_frames=config.section_frames,
                                   carry_frames=config.carry_frames, min_frames=config.window_frames)) is not None:
        s, e, c = section.start, section.end, section.carry
        carried = None if previous is None else output[:, :, s - previous.start : s - previous.start + c]
        latent = None
        for step in diffusion.iter_edit_section(
            straight(diffusion), x0[:, :, s:e], mask[:, :, s:e], slice_cond(dub, s, e), slice_cond(null, s, e),
            original_cond=slice_cond(original, s, e), section=section, carried=carried,
        ):
            if step.phase is Phase.INVERT and step.step == step.steps:
                latent = step.sample
            output = step.sample
        assert torch.equal(latent, whole_latents[section.index])
        pieces.append(output[:, :, c:])
        previous = section
    assert torch.equal(torch.cat(pieces, 2), whole)


def test_the_first_sampling_step_of_a_later_section_sees_the_carried_output(diffusion, make_clip, null_unit):
    """Inversion runs on the original frames; sampling must start from the carried ones, from its very first step."""
    from edidub_engine.diffusion import Section

    x0, mask, units = make_clip(40, seed=3)
    original, dub = {"units": units}, {"units": (units + 1) % null_unit}
    section = Section(index=1, start=0, end=40, carry=12)
    carried = torch.full_like(x0[:, :, :12], 0.25)  # differs from the original carry frames everywhere
    seen = []

    def denoiser(x_t, timestep, cond):
        seen.append(x_t.clone())
        return torch.zeros_like(x_t)

    inversion_calls = None
    for step in diffusion.iter_edit_section(denoiser, x0, mask, dub, null_cond_for(dub, null_unit=null_unit),
                                            original_cond=original, section=section, carried=carried):
        if step.phase is Phase.INVERT and step.step == step.steps:
            inversion_calls = len(seen)
    assert inversion_calls and not torch.equal(seen[0][: x0.shape[0], :, :12], carried)  # inversion: the original frames
    first_window = seen[inversion_calls]  # the first sampling call: the window that starts at frame 0
    n, half = x0.shape[0], first_window.shape[0] // 2
    for rows in (0, half):  # window 0's conditional and unconditional rows alike
        assert torch.equal(first_window[rows : rows + n, :, :12], carried)
