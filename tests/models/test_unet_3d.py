"""Behaviour of the 3-D U-Net on tiny random models: shapes, save/load, audio wiring, errors."""

from __future__ import annotations

import json

import pytest
import torch

from edidub_engine.errors import InvalidArgumentError, ModelMissingError
from edidub_engine.models import (
    EdiDubUNet3DModel,
    UNet3DConfig,
    UNet3DOutput,
    UnitConditioner,
    load_model,
    lsd_tiny_config,
)


def run(model, sample, timestep=500, units=None):
    with torch.no_grad():
        return model(sample, timestep, units).sample


def test_fresh_model_predicts_zero(make_clip):
    # guided-diffusion's zero-initialised output: training starts from "no noise predicted".
    model = EdiDubUNet3DModel(**lsd_tiny_config().to_dict())
    assert torch.count_nonzero(run(model, make_clip(1, 3, 32))) == 0


@pytest.mark.parametrize("frames", [1, 5, 12, 24, 25])
def test_any_number_of_frames(lsd_tiny, make_clip, make_units, frames):
    out = run(lsd_tiny, make_clip(2, frames, 32), torch.tensor([10, 900]), make_units(2, frames))
    assert out.shape == (2, 3, frames, 32, 32)
    assert torch.isfinite(out).all()


def test_other_spatial_sizes_and_return_tuple(lsd_tiny, srd_tiny, make_clip):
    with torch.no_grad():
        (eps,) = lsd_tiny(make_clip(1, 2, 16), 3, return_dict=False)
        out = srd_tiny(make_clip(1, 5, 40), 3)
    assert eps.shape == (1, 3, 2, 16, 16)
    assert isinstance(out, UNet3DOutput) and out.sample.shape == (1, 3, 5, 40, 40)


def test_save_and_load_local_folder(lsd_tiny, make_clip, make_units, tmp_path):
    lsd_tiny.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["_class_name"] == "EdiDubUNet3DModel"

    loaded = load_model(tmp_path)
    assert UNet3DConfig.from_dict(loaded.config) == lsd_tiny_config()
    for name, tensor in lsd_tiny.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    clip, unit_ids = make_clip(1, 6, 32), make_units(1, 6)
    # Same weights, but safetensors' buffers sit at other memory alignments, so CPU kernels may take
    # other vector paths: equal up to float32 rounding, not bitwise.
    torch.testing.assert_close(run(loaded, clip, 250, unit_ids), run(lsd_tiny, clip, 250, unit_ids), rtol=0, atol=1e-5)


def test_load_model_errors(lsd_tiny, tmp_path):
    with pytest.raises(ModelMissingError, match="config.json"):
        load_model(tmp_path)
    lsd_tiny.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {"_class_name": "UNet2DModel"}))
    with pytest.raises(InvalidArgumentError, match="UNet2DModel"):
        load_model(tmp_path)


def test_timestep_forms_agree(lsd_tiny, make_clip):
    clip = make_clip(2, 3, 32)
    reference = run(lsd_tiny, clip, torch.tensor([77, 77]))
    for timestep in (77, 77.0, torch.tensor(77), torch.tensor([77])):
        torch.testing.assert_close(run(lsd_tiny, clip, timestep), reference)
    assert not torch.allclose(run(lsd_tiny, clip, 78), reference)


def test_units_change_the_output_and_null_is_default(lsd_tiny, make_clip, make_units):
    clip = make_clip(1, 8, 32)
    a, b = make_units(1, 8, seed=2), make_units(1, 8, seed=3)
    assert not torch.allclose(run(lsd_tiny, clip, units=a), run(lsd_tiny, clip, units=b))

    null = torch.full((1, 8, 2), lsd_tiny.null_unit)
    assert lsd_tiny.null_unit == 200
    torch.testing.assert_close(run(lsd_tiny, clip, units=None), run(lsd_tiny, clip, units=null))


def test_unit_conditioner_is_local_in_time():
    # Exactly the depth-wise convolution's reach: frame t's units move the vectors of frames t-2..t+2 only.
    torch.manual_seed(0)
    conditioner = UnitConditioner(num_units=201, units_per_frame=2, embed_dim=8, kernel_size=5)
    unit_ids = torch.randint(0, 200, (1, 20, 2))
    changed = unit_ids.clone()
    changed[0, 9] = torch.tensor([5, 6]) if unit_ids[0, 9, 0] != 5 else torch.tensor([7, 8])
    with torch.no_grad():
        moved = (conditioner(changed) - conditioner(unit_ids)).abs().sum(-1)[0]
    assert conditioner(unit_ids).shape == (1, 20, 16)
    assert (moved[7:12] > 0).all()
    assert (moved[:7] == 0).all() and (moved[12:] == 0).all()


def test_units_of_a_frame_act_mostly_near_it(lsd_tiny, make_clip, make_units):
    # Audio enters per frame (±2 frames through the depth-wise conv) and spreads only through 3×3×3
    # convolutions and attention, so the output change peaks near the edited frame and falls off with distance.
    clip, unit_ids = make_clip(1, 25, 32), make_units(1, 25)
    changed = unit_ids.clone()
    changed[0, 12] = torch.tensor([3, 150])
    moved = (run(lsd_tiny, clip, units=changed) - run(lsd_tiny, clip, units=unit_ids)).abs().mean(dim=(0, 1, 3, 4))
    assert 10 <= int(moved.argmax()) <= 14
    assert moved[10:15].mean() > 4 * torch.cat([moved[:3], moved[-3:]]).mean()


@pytest.mark.parametrize(
    ("sample_shape", "unit_shape", "message"),
    [
        ((1, 7, 4, 32), (1, 4, 2), "5-D tensor"),
        ((1, 6, 4, 32, 32), (1, 4, 2), "6 channels"),
        ((1, 7, 4, 30, 32), (1, 4, 2), "multiples of 4"),
        ((1, 7, 4, 32, 32), (1, 5, 2), "units' T must equal"),
        ((1, 7, 4, 32, 32), (1, 4, 1), "2 units per frame"),
        ((2, 7, 4, 32, 32), (1, 4, 2), "expected [2 x 4 x 2]"),
    ],
)
def test_bad_shapes_are_invalid_arguments(lsd_tiny, sample_shape, unit_shape, message):
    with pytest.raises(InvalidArgumentError) as error:
        lsd_tiny(torch.zeros(sample_shape), 1, torch.zeros(unit_shape, dtype=torch.long))
    assert message in str(error.value)


def test_bad_units_and_timesteps_are_invalid_arguments(lsd_tiny, srd_tiny, make_clip):
    clip = make_clip(2, 3, 32)
    with pytest.raises(InvalidArgumentError, match="null unit"):
        lsd_tiny(clip, 1, torch.full((2, 3, 2), 201))
    with pytest.raises(InvalidArgumentError, match="null unit"):
        lsd_tiny(clip, 1, torch.full((2, 3, 2), -1))
    with pytest.raises(InvalidArgumentError, match="integer tensor"):
        lsd_tiny(clip, 1, torch.zeros(2, 3, 2))
    with pytest.raises(InvalidArgumentError, match="one per batch item"):
        lsd_tiny(clip, torch.tensor([1, 2, 3]))
    with pytest.raises(InvalidArgumentError, match="no audio conditioning"):
        srd_tiny(clip, 1, torch.zeros(2, 3, 2, dtype=torch.long))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"attention_resolutions": (4,)}, "not level resolutions"),
        ({"norm_num_groups": 7}, "GroupNorm groups"),
        ({"audio_conv_kernel": 4}, "odd"),
        ({"num_units": 1}, "clusters \\+ 1"),
        ({"sample_size": 30}, "not divisible"),
        ({"num_heads": 3}, "heads"),
    ],
)
def test_bad_configs_are_invalid_arguments(overrides, message):
    config = lsd_tiny_config().to_dict() | overrides
    with pytest.raises(InvalidArgumentError, match=message):
        EdiDubUNet3DModel(**config)


def test_gradient_checkpointing_gives_the_same_gradients(srd_tiny, make_clip):
    clip = make_clip(1, 2, 16)

    def grads():
        srd_tiny.zero_grad()
        srd_tiny(clip, 5).sample.square().mean().backward()
        return [p.grad.clone() for p in srd_tiny.parameters()]

    plain = grads()
    srd_tiny.enable_gradient_checkpointing()
    try:
        checkpointed = grads()
    finally:
        srd_tiny.disable_gradient_checkpointing()
        srd_tiny.zero_grad()
    for a, b in zip(plain, checkpointed, strict=True):
        torch.testing.assert_close(a, b)
