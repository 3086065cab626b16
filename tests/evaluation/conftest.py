"""Fixtures of the evaluation tests: a tiny random model bundle (as tests/test_render.py builds one) and random
weights for the two measuring networks, saved to files so the loaders are exercised as a user would use them."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, footage_path):
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


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """``(id_weights, sync_weights)``: a random InceptionResnetV1 and a random narrow SyncNet, saved as state dicts."""
    from edidub_engine.evaluation.networks import InceptionResnetV1, SyncNet

    out = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    torch.save(InceptionResnetV1().state_dict(), out / "inception_resnet_v1_random.pt")
    torch.save(SyncNet.tiny().state_dict(), out / "syncnet_tiny_random.model")
    return out / "inception_resnet_v1_random.pt", out / "syncnet_tiny_random.model"
