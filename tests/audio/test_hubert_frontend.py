"""HuBERT through the real loading path: a tiny random model saved with save_pretrained, loaded from disk."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from edidub_engine.audio import (
    HubertFrontendConfig,
    HubertUnits,
    MelFrontend,
    UnitEncoder,
    fit_codebook,
    frame_count,
    shot_units,
)
from edidub_engine.errors import InvalidArgumentError, ModelMissingError


def test_features_at_50_hz_from_a_local_folder(tiny_hubert_dir):
    frontend = HubertUnits.from_folder(tiny_hubert_dir)
    audio = np.random.default_rng(0).standard_normal(16000 * 2 + 123).astype(np.float32)
    feats = frontend.features(audio)
    # HuBERT alone gives 49 frames per second; the 80-sample right pad restores the 50th.
    assert feats.shape == (100, 32) == (frame_count(len(audio)), frontend.feature_dim)
    assert feats.dtype == np.float32
    assert frontend.settings()["layer"] is None  # the paper: output features


def test_found_through_edidub_models(tiny_hubert_dir, monkeypatch, isolated_models):
    monkeypatch.setenv("EDIDUB_MODELS", str(tiny_hubert_dir.parent))
    frontend = HubertUnits.from_folder(None, config=HubertFrontendConfig(layer=1))
    assert frontend.model_name == "hubert-large-ll60k"
    assert frontend.features(np.zeros(16000, np.float32)).shape == (50, 32)


def test_layer_choice_changes_features_and_is_checked(tiny_hubert_dir):
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    last = HubertUnits.from_folder(tiny_hubert_dir).features(audio)
    first = HubertUnits.from_folder(tiny_hubert_dir, config=HubertFrontendConfig(layer=0)).features(audio)
    assert not np.allclose(last, first)
    with pytest.raises(InvalidArgumentError, match="layer 9 does not exist"):
        HubertUnits.from_folder(tiny_hubert_dir, config=HubertFrontendConfig(layer=9))


def test_long_audio_in_chunks_keeps_the_frame_count_and_agrees_away_from_seams(tiny_hubert_dir):
    audio = np.random.default_rng(2).standard_normal(16000 * 3).astype(np.float32)
    whole = HubertUnits.from_folder(tiny_hubert_dir).features(audio)
    chunked = HubertUnits.from_folder(tiny_hubert_dir, config=HubertFrontendConfig(chunk_s=1.0, chunk_context_s=0.5)).features(audio)
    assert chunked.shape == whole.shape == (150, 32)
    # The convolutional positional embedding and attention see less context per chunk; the first
    # chunk interior (frames far from any seam or chunk edge) is computed from the same samples.
    assert np.corrcoef(whole[5:45].ravel(), chunked[5:45].ravel())[0, 1] > 0.9


def test_missing_folder_is_model_missing_naming_it(tmp_path, isolated_models):
    with pytest.raises(ModelMissingError) as err:
        HubertUnits.from_folder(tmp_path / "no-such-hubert")
    assert err.value.code == "MODEL_MISSING"
    assert str(tmp_path / "no-such-hubert") in err.value.message
    with pytest.raises(ModelMissingError) as err:
        HubertUnits.from_folder()
    assert str(isolated_models / "hubert-large-ll60k") in err.value.message
    assert "--hubert DIR" in err.value.hint and "--units mel" in err.value.hint


def test_folder_without_weights_is_model_missing(tmp_path, tiny_hubert_dir):
    broken = tmp_path / "hubert"
    broken.mkdir()
    (broken / "config.json").write_bytes((tiny_hubert_dir / "config.json").read_bytes())
    with pytest.raises(ModelMissingError, match="weights could not be loaded"):
        HubertUnits.from_folder(broken)


@pytest.fixture(scope="module")
def hubert_encoder(tiny_hubert_dir, dub_files):
    frontend = HubertUnits.from_folder(tiny_hubert_dir)
    return UnitEncoder(frontend, fit_codebook(frontend, dub_files[:3], clusters=12, max_vectors=2000, seed=0))


@pytest.mark.parametrize(
    "rate, frames",
    [(Fraction(25), 100), (Fraction(24000, 1001), 96), (Fraction(30000, 1001), 120), (Fraction(30), 120), (Fraction(50), 200)],
)
def test_two_units_per_frame_at_any_rate(hubert_encoder, jfk, rate, frames):
    duration = Fraction(frames) / rate  # about 4 s at every rate
    result = shot_units(hubert_encoder, jfk, rate=rate, start_frame=0, end_frame=frames, audio_start_s=1, audio_duration_s=duration, context_frames=4)
    assert result.units.shape == (frames + 8, 2)
    assert result.shot.shape == (frames, 2)
    assert result.padded_frames == 0 and result.cut_s == 0
    assert not np.any(result.shot == hubert_encoder.null_unit)


def test_frontend_mismatch_names_both(hubert_encoder, mel_codebook):
    with pytest.raises(InvalidArgumentError) as err:
        UnitEncoder(hubert_encoder.frontend, mel_codebook)
    assert "'mel'" in err.value.message and "'hubert'" in err.value.message
    with pytest.raises(InvalidArgumentError, match="'hubert' features but the 'mel'"):
        UnitEncoder(MelFrontend(), hubert_encoder.codebook)
