"""Each network's sampling.json: what it says, and what older or partial cards give."""

from __future__ import annotations

import pytest

from edidub_engine.config import DubSettings
from edidub_engine.errors import InvalidArgumentError
from edidub_engine.models.sampling import SamplingSettings


def _card(**config):
    return {"training": {"config": {"window_frames": 5, "train_timesteps": 1000, **config}}}


def test_an_srd_trained_below_a_timestep_starts_there():
    assert SamplingSettings.from_training(_card(max_timestep=500), steps=10).strength == 0.5
    assert SamplingSettings.from_training(_card(max_timestep=500), steps=10, strength=0.3).strength == 0.3  # the exporter's choice wins
    plain = SamplingSettings.from_training(_card(), steps=10)
    assert plain.strength is None and "strength" not in plain.to_dict()  # the paper's: from pure noise
    assert (plain.window_frames, plain.window_stride) == (5, 2)
    assert SamplingSettings.from_training(_card(), steps=10, stride=3).window_stride == 3  # the exporter's measured choice


def test_sampling_settings_round_trip_and_refuse_nonsense(tmp_path):
    settings = SamplingSettings(window_frames=5, window_stride=2, steps=10, strength=0.4)
    settings.save(tmp_path)
    assert SamplingSettings.load(tmp_path) == settings
    with pytest.raises(InvalidArgumentError, match="strength"):
        SamplingSettings(window_frames=5, window_stride=2, steps=10, strength=1.5)
    with pytest.raises(InvalidArgumentError, match="srd_strength"):
        DubSettings(srd_strength=0.0)
    (tmp_path / "sampling.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match="sampling file"):
        SamplingSettings.load(tmp_path)


def test_an_srd_trained_on_the_residual_says_so_and_the_bundle_passes_it_on(tmp_path):
    from edidub_engine.training.config import train_config

    residual = SamplingSettings.from_training(_card(srd_target="residual", residual_scale=4.0), steps=10)
    assert (residual.target, residual.residual_scale) == ("residual", 4.0)
    residual.save(tmp_path)
    assert SamplingSettings.load(tmp_path) == residual
    image = SamplingSettings.from_training(_card(), steps=10)  # older cards, and the paper's image target
    assert image.target is None and "target" not in image.to_dict()
    with pytest.raises(InvalidArgumentError, match="target"):
        SamplingSettings(window_frames=5, window_stride=2, steps=10, target="latent")
    with pytest.raises(InvalidArgumentError, match="srd_target"):
        DubSettings(srd_target="latent")
    with pytest.raises(InvalidArgumentError, match="start_noise"):
        SamplingSettings(window_frames=5, window_stride=2, steps=10, start_noise=2.0)
    quiet = SamplingSettings(window_frames=5, window_stride=2, steps=5, strength=0.4, target="residual", residual_scale=4.0, start_noise=0.0)
    quiet.save(tmp_path)
    assert SamplingSettings.load(tmp_path).start_noise == 0.0
    with pytest.raises(InvalidArgumentError, match="only the SRD"):
        train_config("lsd-tiny", srd_target="residual")
    assert train_config("srd-starter-residual").srd_target == "residual"
