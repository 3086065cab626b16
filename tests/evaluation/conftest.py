"""Fixtures of the evaluation tests (the tiny random model bundle comes from tests/conftest.py) and random
weights for the two measuring networks, saved to files so the loaders are exercised as a user would use them."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def random_weights(tmp_path_factory):
    """``(id_weights, sync_weights)``: a random InceptionResnetV1 and a random narrow SyncNet, saved as state dicts."""
    from edidub_engine.evaluation.networks import InceptionResnetV1, SyncNet

    out = tmp_path_factory.mktemp("weights")
    torch.manual_seed(1)
    torch.save(InceptionResnetV1().state_dict(), out / "inception_resnet_v1_random.pt")
    torch.save(SyncNet.tiny().state_dict(), out / "syncnet_tiny_random.model")
    return out / "inception_resnet_v1_random.pt", out / "syncnet_tiny_random.model"
