"""Size and cost of a network: parameters and FLOPs per forward pass."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from .configs import UNet3DConfig
from .unet_3d import EdiDubUNet3DModel

__all__ = ["count_flops", "count_parameters"]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once)."""
    params = {id(p): p for p in model.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in params.values())


def count_flops(model: EdiDubUNet3DModel, sample_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass on a [N x C x T x H x W] sample (a multiply-add counts 2).

    Counted on a weightless twin on the meta device, so nothing is computed and
    no memory is taken; attention is counted through its plain matmuls (the
    fused CPU kernel is invisible to ``FlopCounterMode``). Normalisations and
    activations are not counted (convolutions and matmuls are > 99 %).
    """
    config = UNet3DConfig.from_dict(model.config).to_dict()
    with torch.device("meta"):
        twin = EdiDubUNet3DModel(**config)
        sample = torch.empty(*sample_shape)
        timestep = torch.zeros(sample_shape[0])
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        twin(sample, timestep)
    return counter.get_total_flops()
