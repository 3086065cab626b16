"""Tiny random U-Nets for the model tests.

A fresh U-Net predicts exactly zero (its residual and output convolutions are
zero-initialised, as guided-diffusion's), which would make every "does the
output depend on X" test pass or fail vacuously; ``randomize`` gives those
layers PyTorch's default initialisation instead.
"""

from __future__ import annotations

import pytest
import torch

from edidub_engine.models import EdiDubUNet3DModel, build_model
from edidub_engine.models.unet_3d import AttentionBlock3D, ResBlock3D


def randomize(model: EdiDubUNet3DModel, seed: int = 0) -> EdiDubUNet3DModel:
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, ResBlock3D):
            module.out_conv.reset_parameters()
        elif isinstance(module, AttentionBlock3D):
            module.proj_out.reset_parameters()
    model.conv_out.reset_parameters()
    return model.eval()


@pytest.fixture(scope="module")
def lsd_tiny() -> EdiDubUNet3DModel:
    torch.manual_seed(0)
    return randomize(build_model("lsd-tiny"))


@pytest.fixture(scope="module")
def srd_tiny() -> EdiDubUNet3DModel:
    torch.manual_seed(0)
    return randomize(build_model("srd-tiny"))


@pytest.fixture(scope="session")
def make_clip():
    """``make_clip(n, t, size)`` → a random [n x 7 x t x size x size] sample: x_t, condition, a 0/1 mask."""

    def make(n: int, t: int, size: int, seed: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(n, 7, t, size, size, generator=g)
        x[:, 6] = (x[:, 6] > 0).float()
        return x

    return make


@pytest.fixture(scope="session")
def make_units():
    """``make_units(n, t)`` → random non-null units [n x t x 2] for a 201-entry table."""

    def make(n: int, t: int, seed: int = 2, num_units: int = 201) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.randint(0, num_units - 1, (n, t, 2), generator=g)

    return make
