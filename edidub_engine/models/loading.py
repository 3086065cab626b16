"""Load a network from a local diffusers-layout folder (``config.json`` + ``diffusion_pytorch_model.safetensors``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError, ModelMissingError

from .unet_3d import EdiDubUNet3DModel

__all__ = ["load_model"]

_FILES = ("config.json", "diffusion_pytorch_model.safetensors")


def load_model(folder: str | os.PathLike[str]) -> EdiDubUNet3DModel:
    """The network saved in ``folder`` (by ``save_pretrained``), in eval mode, on the CPU.

    Only the local folder is read (``local_files_only``). A missing file is a
    :class:`ModelMissingError` naming it; a folder holding another model class
    is an :class:`InvalidArgumentError` (diffusers would build a default
    network from it and only warn).
    """
    folder = Path(folder)
    for name in _FILES:
        if not (folder / name).is_file():
            raise ModelMissingError(
                f"model file {folder / name} is missing",
                hint="train a model with `edidub train`, or point to a folder written by save_pretrained",
                details={"path": str(folder / name)},
            )
    try:
        class_name = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"{folder / 'config.json'} is not a readable JSON config: {exc}") from None
    if class_name != EdiDubUNet3DModel.__name__:
        raise InvalidArgumentError(
            f"{folder} holds a {class_name!r}, not an {EdiDubUNet3DModel.__name__}",
            hint="point to an LSD or SRD model folder",
        )
    # low_cpu_mem_usage needs `accelerate`, which is not a dependency; saying so avoids its warning.
    model = EdiDubUNet3DModel.from_pretrained(folder, local_files_only=True, low_cpu_mem_usage=False)
    return model.eval()
