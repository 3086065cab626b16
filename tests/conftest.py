"""Shared test fixtures: where the project's shared footage lives, and skipping when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = REPO_ROOT.parent / "shared" / "footage"


@pytest.fixture(scope="session")
def footage_path():
    """``footage_path("grid_bbaf2n.mpg")`` → its path under ../shared/footage, or skip the test."""

    def find(name: str) -> Path:
        path = FOOTAGE / name
        if not path.is_file():
            pytest.skip(f"shared footage {path} is absent (tests read it from ../shared/footage)")
        return path

    return find


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, footage_path):
    """A model bundle with random weights, built through the real save/resolve path.

    It tests the mechanics of dubbing (frames, timecode, sound, passthrough, the
    cache, the daemon and the plugins), not the look of the mouth. The output
    layers are re-initialised: guided-diffusion's zero init would make the
    networks predict exactly zero noise.
    """
    import torch

    from edidub_engine.audio import fit_codebook, load_frontend
    from edidub_engine.models import build_model
    from edidub_engine.models.bundle import write_bundle_manifest

    out = tmp_path_factory.mktemp("bundle")
    codebook = fit_codebook(load_frontend("mel"), [footage_path("grid_bbaf2n.mpg")], clusters=8, max_vectors=5000, seed=0)
    codebook.save(out / "codebook.safetensors")
    torch.manual_seed(0)
    lsd = build_model("lsd-tiny", num_units=9, base_channels=16, channel_mults=(1, 2), attention_resolutions=(16,))
    srd = build_model("srd-tiny", base_channels=8, channel_mults=(1, 2), norm_num_groups=4)
    for model in (lsd, srd):
        model.conv_out.reset_parameters()
    lsd.save_pretrained(out / "lsd")
    srd.save_pretrained(out / "srd")
    write_bundle_manifest(out, name="test-tiny", version="0", frontend="mel", card={"summary": "random weights for tests"},
                          defaults={"steps": 3, "inversion_steps": 3, "srd_steps": 2})
    return out
