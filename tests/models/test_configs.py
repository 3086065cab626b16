"""Presets, config round trips and the model summary helpers."""

from __future__ import annotations

import pytest

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.models import (
    PRESETS,
    EdiDubUNet3DModel,
    UNet3DConfig,
    build_model,
    count_flops,
    count_parameters,
    lsd_paper_config,
    srd_paper_config,
)


def test_paper_presets_follow_table_4():
    lsd, srd = lsd_paper_config(), srd_paper_config()
    assert (lsd.sample_size, lsd.base_channels, lsd.channel_mults) == (64, 64, (1, 2, 4, 8))
    assert (lsd.num_res_blocks, lsd.attention_resolutions, lsd.num_heads) == (1, (16, 8), 4)
    assert (lsd.norm_num_groups, lsd.time_embed_dim, lsd.out_channels) == (32, 256, 3)
    assert (lsd.num_units, lsd.units_per_frame, lsd.in_channels) == (201, 2, 7)
    assert (srd.sample_size, srd.base_channels, srd.channel_mults) == (224, 64, (1, 1, 2, 2, 4, 4))
    assert (srd.attention_resolutions, srd.num_units, srd.in_channels) == ((), None, 7)


@pytest.mark.parametrize("name", ["lsd-tiny", "srd-tiny"])
def test_tiny_presets_build_and_round_trip_their_config(name):
    model = build_model(name)
    assert isinstance(model, EdiDubUNet3DModel)
    assert UNet3DConfig.from_dict(model.config) == PRESETS[name]()
    assert count_parameters(model) < 10_000_000


def test_build_model_overrides_and_errors():
    assert build_model("srd-tiny", dropout=0.1).config.dropout == 0.1
    with pytest.raises(InvalidArgumentError, match="unknown model preset"):
        build_model("lsd-huge")
    with pytest.raises(InvalidArgumentError, match="override"):
        build_model("srd-tiny", depth=3)
    with pytest.raises(InvalidArgumentError, match="unknown U-Net config key"):
        UNet3DConfig.from_dict({"channels": 3})


def test_count_flops_scales_with_frames():
    # Fully convolutional in time: FLOPs are affine in T (the timestep MLP runs once per clip; the tiny SRD
    # has no attention, whose cost would grow with T²).
    model = build_model("srd-tiny")
    one, two, five = (count_flops(model, (1, 7, t, 64, 64)) for t in (1, 2, 5))
    assert five - one == 4 * (two - one) > 0
