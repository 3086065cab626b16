"""The LSD and SRD networks: one conditional 3-D U-Net family with speech-unit (AdaIN) conditioning.

Importing this package builds and loads nothing; see :func:`build_model` and
``EdiDubUNet3DModel.from_pretrained(folder)``. This package never imports
``edidub_engine.diffusion``: the diffusion code takes the network as a callable.
"""

from .conditioning import UnitConditioner
from .configs import (
    PRESETS,
    UNet3DConfig,
    build_model,
    lsd_paper_config,
    lsd_tiny_config,
    srd_paper_config,
    srd_tiny_config,
)
from .loading import load_model
from .summary import count_flops, count_parameters
from .unet_3d import EdiDubUNet3DModel, UNet3DOutput

__all__ = [
    "PRESETS",
    "EdiDubUNet3DModel",
    "UNet3DConfig",
    "UNet3DOutput",
    "UnitConditioner",
    "build_model",
    "count_flops",
    "count_parameters",
    "load_model",
    "lsd_paper_config",
    "lsd_tiny_config",
    "srd_paper_config",
    "srd_tiny_config",
]
