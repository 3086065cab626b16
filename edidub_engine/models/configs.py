"""Network presets as typed data: the paper's LSD and SRD (appendix B.1, table 4) and tiny CPU versions.

A :class:`UNet3DConfig` holds exactly the keyword arguments of
:class:`~edidub_engine.models.unet_3d.EdiDubUNet3DModel`; the model writes them
to ``config.json`` beside its weights, so a checkpoint carries its own
architecture and :meth:`UNet3DConfig.from_dict` reads it back from
``model.config``.

Presets (``build_model(name)``):

* ``lsd-paper``: 64×64, base 64, mults (1, 2, 4, 8), 1 residual block per
  level, attention at 16 and 8 with 4 heads, GroupNorm 32, time embedding 256,
  201 units (200 k-means clusters + the null unit), 2 units per frame.
* ``srd-paper``: 224×224, base 64, mults (1, 1, 2, 2, 4, 4) (deeper and
  narrower), no attention, no audio.
* ``lsd-tiny``: 32×32, base 32, mults (1, 2, 4), attention at 8, GroupNorm 8,
  time embedding 128, the same 201-unit table (it reads the same codebook).
  Small enough to train on a CPU for tests and a starter model; the
  pipeline must crop LSD input at ``model.config.sample_size`` (32 here).
* ``srd-tiny``: 64×64 (×2 the tiny LSD), base 16, mults (1, 2, 2, 4), no
  attention, no audio, GroupNorm 8.

Choices the paper leaves open, made here and kept in every preset: one unit's
embedding is 128 wide for the paper models (a frame's vector is 2·128 = 256,
the width of the time embedding) and 64 for the tiny ones; the depth-wise
audio convolution spans 5 frames (±80 ms of units at 25 fps; the U-Net's
temporal 3×3×3 convolutions widen the reach further); dropout 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from edidub_engine.errors import InvalidArgumentError

from .unet_3d import EdiDubUNet3DModel

__all__ = [
    "PRESETS",
    "UNet3DConfig",
    "build_model",
    "lsd_paper_config",
    "lsd_tiny_config",
    "srd_paper_config",
    "srd_tiny_config",
]


@dataclass(frozen=True, kw_only=True)
class UNet3DConfig:
    """The architecture of one :class:`EdiDubUNet3DModel` (field docs on the model class)."""

    in_channels: int = 7
    out_channels: int = 3
    sample_size: int = 64
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 4, 8)
    num_res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = (16, 8)
    num_heads: int = 4
    norm_num_groups: int = 32
    time_embed_dim: int = 256
    num_units: int | None = 201
    units_per_frame: int = 2
    unit_embed_dim: int = 128
    audio_conv_kernel: int = 5
    dropout: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain keyword arguments of the model (tuples kept)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UNet3DConfig:
        """From ``model.config`` or a loaded ``config.json``: diffusers' ``_``-keys are dropped, lists become tuples.

        An unknown key is an error: it means a checkpoint of another architecture.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key.startswith("_"):
                continue
            if key not in names:
                raise InvalidArgumentError(
                    f"unknown U-Net config key {key!r}",
                    hint="the config belongs to another model class or a newer EdiDub version",
                )
            kwargs[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


def lsd_paper_config() -> UNet3DConfig:
    """LSD as in the paper's table 4 (about 119 M parameters)."""
    return UNet3DConfig(
        sample_size=64,
        base_channels=64,
        channel_mults=(1, 2, 4, 8),
        num_res_blocks=1,
        attention_resolutions=(16, 8),
        num_heads=4,
        norm_num_groups=32,
        time_embed_dim=256,
        num_units=201,
        units_per_frame=2,
        unit_embed_dim=128,
        audio_conv_kernel=5,
    )


def srd_paper_config() -> UNet3DConfig:
    """SRD as in the paper's table 4: six levels, narrower, no attention, no audio."""
    return UNet3DConfig(
        sample_size=224,
        base_channels=64,
        channel_mults=(1, 1, 2, 2, 4, 4),
        num_res_blocks=1,
        attention_resolutions=(),
        num_heads=4,
        norm_num_groups=32,
        time_embed_dim=256,
        num_units=None,
    )


def lsd_tiny_config() -> UNet3DConfig:
    """A CPU-trainable LSD: 32×32, three levels, attention at 8×8, the paper's unit table."""
    return UNet3DConfig(
        sample_size=32,
        base_channels=32,
        channel_mults=(1, 2, 4),
        num_res_blocks=1,
        attention_resolutions=(8,),
        num_heads=4,
        norm_num_groups=8,
        time_embed_dim=128,
        num_units=201,
        units_per_frame=2,
        unit_embed_dim=64,
        audio_conv_kernel=5,
    )


def srd_tiny_config() -> UNet3DConfig:
    """A CPU-trainable SRD: 64×64 (twice the tiny LSD), four levels, no attention, no audio."""
    return UNet3DConfig(
        sample_size=64,
        base_channels=16,
        channel_mults=(1, 2, 2, 4),
        num_res_blocks=1,
        attention_resolutions=(),
        num_heads=4,
        norm_num_groups=8,
        time_embed_dim=64,
        num_units=None,
    )


PRESETS: dict[str, Callable[[], UNet3DConfig]] = {
    "lsd-paper": lsd_paper_config,
    "lsd-tiny": lsd_tiny_config,
    "srd-paper": srd_paper_config,
    "srd-tiny": srd_tiny_config,
}


def build_model(preset: str | UNet3DConfig, **overrides: Any) -> EdiDubUNet3DModel:
    """A freshly initialised network from a preset name or a config.

    :param preset: one of :data:`PRESETS` (``"lsd-paper"``, ``"lsd-tiny"``,
        ``"srd-paper"``, ``"srd-tiny"``) or a :class:`UNet3DConfig`.
    :param overrides: config fields to change, e.g. ``dropout=0.1``.
    """
    if isinstance(preset, UNet3DConfig):
        config = preset
    else:
        if preset not in PRESETS:
            raise InvalidArgumentError(
                f"unknown model preset {preset!r}", hint=f"choose one of {', '.join(sorted(PRESETS))}"
            )
        config = PRESETS[preset]()
    if overrides:
        try:
            config = dataclasses.replace(config, **overrides)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad model config override: {exc}") from None
    return EdiDubUNet3DModel(**config.to_dict())
