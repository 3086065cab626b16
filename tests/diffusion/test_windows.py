"""MultiDiffusion windows and long-shot sections: index arithmetic only."""

from __future__ import annotations

import pytest
import torch

from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion, plan_sections, window_starts, window_weights
from edidub_engine.errors import InvalidArgumentError


@pytest.mark.parametrize("frames", [1, 5, 24, 25, 36, 37, 120, 121])
def test_window_weights_sum_to_one_for_every_frame(frames):
    weights = window_weights(frames, window_frames=24, window_stride=12, dtype=torch.float64)
    starts = window_starts(frames, window_frames=24, window_stride=12)
    assert weights.shape == (len(starts), frames)
    torch.testing.assert_close(weights.sum(0), torch.ones(frames, dtype=torch.float64), rtol=0, atol=1e-12)
    # uniform: every window covering a frame has the same weight there
    for f in range(frames):
        nonzero = weights[:, f][weights[:, f] > 0]
        assert torch.all(nonzero == nonzero[0])


def test_window_starts_stride_and_end_alignment():
    assert window_starts(24, window_frames=24, window_stride=12) == [0]
    assert window_starts(10, window_frames=24, window_stride=12) == [0]  # shorter than a window: one window
    assert window_starts(36, window_frames=24, window_stride=12) == [0, 12]
    assert window_starts(37, window_frames=24, window_stride=12) == [0, 12, 13]  # last one aligned to the end
    assert window_starts(120, window_frames=24, window_stride=12) == list(range(0, 97, 12))


@pytest.mark.parametrize("frames", [24, 119, 120, 121, 130, 228, 229, 240, 500])
def test_sections_cover_every_frame_once_with_carry_over(frames):
    sections = plan_sections(frames, section_frames=120, carry_frames=12, min_frames=24)
    generated = []
    for prev, section in zip([None, *sections], sections):
        assert section.frames <= 120
        assert section.frames >= min(24, frames)
        if prev is None:
            assert section.start == 0 and section.carry == 0
        else:
            assert section.carry >= 12 and section.new_start == prev.end
        generated.extend(range(section.new_start, section.end))
    assert generated == list(range(frames))


def test_sections_follow_the_paper_108_new_frames_each():
    sections = plan_sections(348, section_frames=120, carry_frames=12, min_frames=24)
    layout = [(s.start, s.end, s.carry) for s in sections]
    assert layout == [(0, 120, 0), (108, 228, 12), (216, 336, 12), (324, 348, 12)]
    # a tail shorter than one window reaches further back instead of running a 4-frame clip
    sections = plan_sections(340, section_frames=120, carry_frames=12, min_frames=24)
    assert [(s.start, s.end, s.carry) for s in sections][-1] == (316, 340, 20)


def test_config_rejects_gaps_and_bad_values():
    with pytest.raises(InvalidArgumentError):
        DiffusionConfig(window_frames=12, window_stride=13)
    with pytest.raises(InvalidArgumentError):
        DiffusionConfig(carry_frames=120)
    with pytest.raises(InvalidArgumentError):
        DiffusionConfig(inference_steps=2000)
    with pytest.raises(InvalidArgumentError):
        DiffusionConfig(schedule="cosine-ish")
    assert DiffusionConfig(schedule="squaredcos_cap_v2").to_dict()["schedule"] == "squaredcos_cap_v2"


def test_scheduler_is_the_paper_setting():
    d = MaskedDiffusion(config=DiffusionConfig())
    assert d.scheduler.config.beta_schedule == "squaredcos_cap_v2"
    assert d.scheduler.config.prediction_type == "epsilon" and d.scheduler.config.clip_sample
    assert d.scheduler.timesteps.tolist() == list(range(980, -1, -20))  # 50 uniformly spaced steps
    assert d.inverse_scheduler.timesteps.tolist() == list(range(0, 981, 20))


@pytest.mark.parametrize("frames", [1, 23, 24, 119, 120, 121, 131, 132, 228, 229, 240, 250, 1000])
@pytest.mark.parametrize("arrival", [1, 7, 50, 500])
def test_sections_decided_while_frames_arrive_are_the_whole_shot_plan(frames, arrival):
    """A streamed shot (length unknown until it ends) is cut exactly as plan_sections cuts the whole one."""
    from edidub_engine.diffusion import next_section

    plan = dict(section_frames=120, carry_frames=12, min_frames=24)
    got, previous, available = [], None, 0
    while True:
        available = min(frames, available + arrival)
        finished = available == frames
        while (section := next_section(previous, available, finished=finished, **plan)) is not None:
            assert section.end <= available  # never waits on a frame it was not given
            got.append(section)
            previous = section
        if finished:
            break
    assert got == plan_sections(frames, **plan)
