"""Fixtures for the speech-unit tests: shared dub speech, a tiny random HuBERT saved to disk, a mel codebook."""

from __future__ import annotations

from pathlib import Path

import pytest

FOOTAGE = Path(__file__).resolve().parents[2].parent / "shared" / "footage"

# A HuBERT with the standard convolutional encoder (400-sample window, 320-sample hop) but tiny widths,
# so tests exercise the real transformers loading path in well under a second.
TINY_HUBERT = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(16,) * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


@pytest.fixture(scope="session")
def dub_files() -> list[Path]:
    files = sorted(FOOTAGE.glob("dub_*")) if FOOTAGE.is_dir() else []
    if not files:
        pytest.skip(f"no dub_* speech in {FOOTAGE} (tests read it from ../shared/footage)")
    return files


@pytest.fixture(scope="session")
def jfk(dub_files) -> Path:
    path = FOOTAGE / "dub_en_jfk.flac"
    if not path.is_file():
        pytest.skip(f"shared footage {path} is absent")
    return path


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory) -> Path:
    """A random tiny HubertModel written with save_pretrained, as a user's model folder would be."""
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "hubert-large-ll60k"
    HubertModel(HubertConfig(**TINY_HUBERT)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def mel_codebook(dub_files):
    from edidub_engine.audio import MelFrontend, fit_codebook

    return fit_codebook(MelFrontend(), dub_files, clusters=32, max_vectors=3000, seed=0, source="shared/footage/dub_*")


@pytest.fixture
def isolated_models(tmp_path, monkeypatch) -> Path:
    """No $EDIDUB_MODELS and an empty user data folder, so a model installed on this machine cannot leak in."""
    monkeypatch.delenv("EDIDUB_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "edidub" / "models"
