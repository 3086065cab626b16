"""The conditional 3-D U-Net of LSD and SRD (paper §3.1, §3.2, appendix B.1 table 4).

The paper's network is openai/guided-diffusion's ``UNetModel`` with ``dims=3``,
and this follows it block for block: true 3×3×3 convolutions; residual blocks
of GroupNorm + SiLU with the timestep embedding injected as scale and shift
after the second norm (``use_scale_shift_norm``); down- and up-sampling on the
two spatial axes only (stride (1, 2, 2)), so the network is fully convolutional
in time and takes any number of frames; concatenation skips; attention blocks
at the listed spatial resolutions (and in the middle block when the lowest
resolution is listed); zero-initialised residual and output convolutions, so a
fresh network predicts zero noise.

What EdiDub adds: speech units per frame (:class:`UnitConditioner`) give every
residual block a per-frame scale and shift that are added to the timestep's
(adaptive instance normalisation, no cross-attention), and attention is
spatio-temporal: one sequence over all T·H·W positions of the window.

Input channels, a project-wide **contract**: ``sample`` is the channel
concatenation ``[x_t (3), condition (3), mask (1)]`` = 7 channels, for LSD and
SRD alike:

* ``x_t``: the noisy clip (noise only inside the mask);
* ``condition``: LSD — the reference clip; SRD — the bicubic-upsampled
  low-resolution frames;
* ``mask``: 1 where the network must generate, 0 where the clip is given.

The paper concatenates only the first six; the mask channel makes explicit to
the network which pixels are given, which matters for the 12 carried-over
frames at a section's start (whole frames with a zero mask) and for the edge of
the lower-face region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from edidub_engine.errors import InvalidArgumentError

from .conditioning import UnitConditioner

__all__ = [
    "AttentionBlock3D",
    "Downsample3D",
    "EdiDubUNet3DModel",
    "ResBlock3D",
    "UNet3DOutput",
    "Upsample3D",
    "timestep_embedding",
]


@dataclass
class UNet3DOutput(BaseOutput):
    """What :class:`EdiDubUNet3DModel` returns.

    :param sample: [N x out_channels x T x H x W] the predicted noise (epsilon).
    """

    sample: torch.Tensor


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal timestep embeddings, as guided-diffusion (``[cos | sin]``).

    :param timesteps: [N] timesteps, possibly fractional.
    :param dim: output width.
    :return: [N x dim] float32 embeddings.
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def _zero(module: nn.Module) -> nn.Module:
    """Zero a module's parameters: residual branches start as identities, the output as zero noise."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock3D(nn.Module):
    """guided-diffusion's ResBlock (dims=3, use_scale_shift_norm) with per-frame audio modulation.

    ``h = conv(silu(norm(x)))``, then
    ``h = norm(h) * (1 + scale) + shift`` where ``scale``/``shift`` are the
    timestep's (one per channel) plus the audio's (one per channel and frame,
    broadcast over H and W), then ``skip(x) + conv(dropout(silu(h)))``. Adding the two
    modulations keeps the block's one normalisation as in guided-diffusion and
    costs nothing when there is no audio.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        emb_channels: int,
        cond_channels: int | None,
        norm_num_groups: int,
        dropout: float,
    ):
        super().__init__()
        self.in_norm = nn.GroupNorm(norm_num_groups, in_channels)
        self.in_conv = nn.Conv3d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_channels, 2 * out_channels)
        self.cond_proj = nn.Linear(cond_channels, 2 * out_channels) if cond_channels else None
        self.out_norm = nn.GroupNorm(norm_num_groups, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.out_conv = _zero(nn.Conv3d(out_channels, out_channels, 3, padding=1))
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv3d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """
        :param x: [N x C_in x T x H x W].
        :param emb: [N x emb_channels] timestep embedding.
        :param cond: [N x T x cond_channels] audio vectors per frame, or None.
        :return: [N x C_out x T x H x W].
        """
        h = self.in_conv(F.silu(self.in_norm(x)))
        scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None, None].chunk(2, dim=1)
        if self.cond_proj is not None and cond is not None:
            a_scale, a_shift = self.cond_proj(cond).transpose(1, 2)[..., None, None].chunk(2, dim=1)
            scale = scale + a_scale  # [N x C x T x 1 x 1]: one scale per channel and frame
            shift = shift + a_shift
        h = self.out_norm(h) * (1 + scale) + shift
        h = self.out_conv(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock3D(nn.Module):
    """Spatio-temporal self-attention over every T·H·W position of the window (guided-diffusion's AttentionBlock)."""

    def __init__(self, *, channels: int, num_heads: int, norm_num_groups: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(norm_num_groups, channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj_out = _zero(nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:param x: [N x C x T x H x W] → same shape."""
        n, c, t, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [N x L x C], L = T*H*W
        qkv = self.qkv(tokens).reshape(n, -1, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])  # [N x heads x L x C/heads]
        out = self.proj_out(out.transpose(1, 2).reshape(n, -1, c))
        return x + out.transpose(1, 2).reshape(n, c, t, h, w)


class Downsample3D(nn.Module):
    """Strided 3×3×3 convolution that halves H and W and keeps T (guided-diffusion's dims=3 rule)."""

    def __init__(self, *, channels: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, 3, stride=(1, 2, 2), padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample3D(nn.Module):
    """Nearest ×2 on H and W (T kept), then a 3×3×3 convolution."""

    def __init__(self, *, channels: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest"))


class _Step(nn.ModuleList):
    """One U-Net step (guided-diffusion's TimestepEmbedSequential): gives each layer the inputs it takes."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        for layer in self:
            x = layer(x, emb, cond) if isinstance(layer, ResBlock3D) else layer(x)
        return x


class EdiDubUNet3DModel(ModelMixin, ConfigMixin):
    """Conditional 3-D U-Net predicting the noise of a masked clip (LSD and SRD).

    Build it from a preset (:func:`edidub_engine.models.build_model`) or with
    keywords; ``save_pretrained(folder)`` writes ``config.json`` +
    ``diffusion_pytorch_model.safetensors`` and ``from_pretrained(folder)``
    reads them back (local folders only; nothing is downloaded).

    :param in_channels: 7 by the project's convention ``[x_t, condition, mask]`` (module docstring).
    :param out_channels: 3, the predicted noise of the RGB clip.
    :param sample_size: the spatial size the network is trained at; it places
        the attention blocks (level ``l`` has resolution ``sample_size / 2**l``).
        Other sizes run too (H and W divisible by ``2**(len(channel_mults) - 1)``).
    :param base_channels: channels of the first level.
    :param channel_mults: per level, channels = ``base_channels * mult``; one
        spatial downsampling between consecutive levels.
    :param num_res_blocks: residual blocks per level on the way down (one more on the way up).
    :param attention_resolutions: spatial sizes (e.g. ``(16, 8)``) with an attention
        block after each residual block; each must be the resolution of a level.
    :param num_heads: attention heads.
    :param norm_num_groups: GroupNorm groups; must divide every level's channels.
    :param time_embed_dim: width of the timestep embedding MLP (input to it:
        a ``base_channels``-wide sinusoid, as guided-diffusion).
    :param num_units: speech-unit table size = clusters + 1 (the last index is
        the null unit); ``None`` for a network without audio (SRD).
    :param units_per_frame: units per video frame (2: 50 Hz units at 25 fps).
    :param unit_embed_dim: width of one unit's embedding; a frame's vector is
        ``units_per_frame * unit_embed_dim`` wide.
    :param audio_conv_kernel: odd temporal extent (frames) of the depth-wise
        convolution over the per-frame unit vectors.
    :param dropout: dropout inside residual blocks.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        *,
        in_channels: int = 7,
        out_channels: int = 3,
        sample_size: int = 64,
        base_channels: int = 64,
        channel_mults: Sequence[int] = (1, 2, 4, 8),
        num_res_blocks: int = 1,
        attention_resolutions: Sequence[int] = (16, 8),
        num_heads: int = 4,
        norm_num_groups: int = 32,
        time_embed_dim: int = 256,
        num_units: int | None = 201,
        units_per_frame: int = 2,
        unit_embed_dim: int = 128,
        audio_conv_kernel: int = 5,
        dropout: float = 0.0,
    ):
        super().__init__()
        channel_mults = tuple(int(m) for m in channel_mults)
        attention_resolutions = tuple(int(r) for r in attention_resolutions)
        _check_config(
            in_channels=in_channels,
            out_channels=out_channels,
            sample_size=sample_size,
            base_channels=base_channels,
            channel_mults=channel_mults,
            num_res_blocks=num_res_blocks,
            attention_resolutions=attention_resolutions,
            num_heads=num_heads,
            norm_num_groups=norm_num_groups,
            num_units=num_units,
            units_per_frame=units_per_frame,
            unit_embed_dim=unit_embed_dim,
            audio_conv_kernel=audio_conv_kernel,
        )
        self.gradient_checkpointing = False

        self.time_embed = nn.Sequential(
            nn.Linear(base_channels, time_embed_dim),
            nn.SiLU(),
            nn.Linear(time_embed_dim, time_embed_dim),
        )
        if num_units is not None:
            self.unit_conditioner = UnitConditioner(
                num_units=num_units,
                units_per_frame=units_per_frame,
                embed_dim=unit_embed_dim,
                kernel_size=audio_conv_kernel,
            )
            cond_channels = self.unit_conditioner.out_channels
        else:
            self.unit_conditioner = None
            cond_channels = None

        def res(cin: int, cout: int) -> ResBlock3D:
            return ResBlock3D(
                in_channels=cin,
                out_channels=cout,
                emb_channels=time_embed_dim,
                cond_channels=cond_channels,
                norm_num_groups=norm_num_groups,
                dropout=dropout,
            )

        def attn(ch: int) -> AttentionBlock3D:
            return AttentionBlock3D(channels=ch, num_heads=num_heads, norm_num_groups=norm_num_groups)

        ch = base_channels * channel_mults[0]
        self.conv_in = nn.Conv3d(in_channels, ch, 3, padding=1)
        skip_channels = [ch]
        self.down_steps = nn.ModuleList()
        last = len(channel_mults) - 1
        for level, mult in enumerate(channel_mults):
            with_attention = sample_size // 2**level in attention_resolutions
            for _ in range(num_res_blocks):
                layers: list[nn.Module] = [res(ch, base_channels * mult)]
                ch = base_channels * mult
                if with_attention:
                    layers.append(attn(ch))
                self.down_steps.append(_Step(layers))
                skip_channels.append(ch)
            if level != last:
                self.down_steps.append(_Step([Downsample3D(channels=ch)]))
                skip_channels.append(ch)

        middle: list[nn.Module] = [res(ch, ch)]
        if sample_size // 2**last in attention_resolutions:
            middle.append(attn(ch))
        middle.append(res(ch, ch))
        self.middle_step = _Step(middle)

        self.up_steps = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            with_attention = sample_size // 2**level in attention_resolutions
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), base_channels * mult)]
                ch = base_channels * mult
                if with_attention:
                    layers.append(attn(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample3D(channels=ch))
                self.up_steps.append(_Step(layers))

        self.norm_out = nn.GroupNorm(norm_num_groups, ch)
        self.conv_out = _zero(nn.Conv3d(ch, out_channels, 3, padding=1))

    @property
    def null_unit(self) -> int | None:
        """Index of the null unit ("no audio", the unconditional branch of guidance); None without audio."""
        return None if self.config.num_units is None else self.config.num_units - 1

    @property
    def spatial_multiple(self) -> int:
        """H and W must be multiples of this (one halving per level after the first)."""
        return 2 ** (len(self.config.channel_mults) - 1)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int | float,
        units: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> UNet3DOutput | tuple[torch.Tensor]:
        """Predict the noise in ``sample``.

        :param sample: [N x in_channels x T x H x W], channels ``[x_t, condition, mask]``;
            any T >= 1; H, W multiples of :attr:`spatial_multiple`.
        :param timestep: [N] or [1] tensor, or a scalar (same for the whole batch).
        :param units: [N x T x units_per_frame] integer speech units in
            ``[0, num_units)``. ``None`` on an audio model means every slot is the
            null unit (the unconditional branch of classifier-free guidance); a
            model without audio (SRD) takes only ``None``.
        :param return_dict: return :class:`UNet3DOutput` (else a 1-tuple).
        :return: ``UNet3DOutput(sample=eps)``, eps [N x out_channels x T x H x W].
        """
        self._check_sample(sample)
        n, _, t, _, _ = sample.shape
        timesteps = self._timesteps(timestep, n, sample.device)
        cond = self._condition(units, n, t, sample.device)

        emb = self.time_embed(timestep_embedding(timesteps, self.config.base_channels).to(sample.dtype))
        if cond is not None:
            cond = cond.to(sample.dtype)

        h = self.conv_in(sample)
        skips = [h]
        for step in self.down_steps:
            h = self._run(step, h, emb, cond)
            skips.append(h)
        h = self._run(self.middle_step, h, emb, cond)
        for step in self.up_steps:
            h = self._run(step, torch.cat([h, skips.pop()], dim=1), emb, cond)
        eps = self.conv_out(F.silu(self.norm_out(h)))
        return UNet3DOutput(sample=eps) if return_dict else (eps,)

    def _run(self, step: _Step, h: torch.Tensor, emb: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return self._gradient_checkpointing_func(step, h, emb, cond)
        return step(h, emb, cond)

    def _check_sample(self, sample: torch.Tensor) -> None:
        if not isinstance(sample, torch.Tensor) or sample.ndim != 5:
            got = tuple(sample.shape) if isinstance(sample, torch.Tensor) else type(sample).__name__
            raise InvalidArgumentError(
                f"sample must be a 5-D tensor [N x C x T x H x W], got {got}",
                hint="stack frames as channels-first video: [batch, channels, frames, height, width]",
            )
        n, c, t, h, w = sample.shape
        if c != self.config.in_channels:
            raise InvalidArgumentError(
                f"sample has {c} channels, the model takes {self.config.in_channels}",
                hint="concatenate [x_t (3), condition (3), mask (1)] along dim 1",
            )
        if min(n, t) < 1:
            raise InvalidArgumentError(f"sample {tuple(sample.shape)} has no batch items or no frames")
        m = self.spatial_multiple
        if h < m or w < m or h % m or w % m:
            raise InvalidArgumentError(
                f"sample is {h}x{w}; height and width must be positive multiples of {m}",
                hint=f"this model has {len(self.config.channel_mults)} levels and halves H and W between them",
            )

    @staticmethod
    def _timesteps(timestep: torch.Tensor | int | float, n: int, device: torch.device) -> torch.Tensor:
        timesteps = torch.as_tensor(timestep, device=device)
        if timesteps.ndim == 0:
            timesteps = timesteps[None]
        if timesteps.ndim != 1 or timesteps.shape[0] not in (1, n):
            raise InvalidArgumentError(
                f"timestep has shape {tuple(timesteps.shape)}; expected a scalar, [1] or [{n}] (one per batch item)"
            )
        return timesteps.expand(n)

    def _condition(self, units: torch.Tensor | None, n: int, t: int, device: torch.device) -> torch.Tensor | None:
        if self.unit_conditioner is None:
            if units is not None:
                raise InvalidArgumentError(
                    "this model has no audio conditioning (num_units=None) but units were given",
                    hint="pass units=None to a super-resolution (SRD) model",
                )
            return None
        per_frame = self.config.units_per_frame
        if units is None:
            units = torch.full((n, t, per_frame), self.null_unit, dtype=torch.long, device=device)
        if not isinstance(units, torch.Tensor) or units.dtype.is_floating_point or units.dtype.is_complex:
            raise InvalidArgumentError(
                f"units must be an integer tensor, got {getattr(units, 'dtype', type(units).__name__)}",
                hint="pass unit indices as torch.int64",
            )
        if tuple(units.shape) != (n, t, per_frame):
            raise InvalidArgumentError(
                f"units have shape {tuple(units.shape)}; expected [{n} x {t} x {per_frame}] "
                f"(batch and frame count of the sample, {per_frame} units per frame)",
                hint="units' T must equal the sample's T",
            )
        # Meta tensors (FLOP counting without computing) have no values to check. On a GPU, or inside
        # torch.compile, reading the values back would stall the device (a host sync per forward) or
        # break the graph: there the caller checks them (DubbingPipeline does, once per edit).
        if units.device.type in ("meta", "cuda") or torch.compiler.is_compiling():
            return self.unit_conditioner(units.to(device=device, dtype=torch.long))
        lo, hi = int(units.min()), int(units.max())
        if lo < 0 or hi >= self.config.num_units:
            raise InvalidArgumentError(
                f"units range over [{lo}, {hi}]; valid indices are 0..{self.config.num_units - 1} "
                f"({self.config.num_units - 1} is the null unit)",
                hint="the model's num_units must be the codebook's clusters + 1",
            )
        return self.unit_conditioner(units.to(device=device, dtype=torch.long))


def _check_config(
    *,
    in_channels: int,
    out_channels: int,
    sample_size: int,
    base_channels: int,
    channel_mults: tuple[int, ...],
    num_res_blocks: int,
    attention_resolutions: tuple[int, ...],
    num_heads: int,
    norm_num_groups: int,
    num_units: int | None,
    units_per_frame: int,
    unit_embed_dim: int,
    audio_conv_kernel: int,
) -> None:
    """Reject configurations that would fail deep inside torch, or silently drop a requested block."""

    def need(ok: bool, message: str, hint: str | None = None) -> None:
        if not ok:
            raise InvalidArgumentError(message, hint=hint)

    for name, value in (
        ("in_channels", in_channels),
        ("out_channels", out_channels),
        ("sample_size", sample_size),
        ("base_channels", base_channels),
        ("num_res_blocks", num_res_blocks),
        ("num_heads", num_heads),
        ("norm_num_groups", norm_num_groups),
    ):
        need(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
    need(
        len(channel_mults) >= 1 and all(m >= 1 for m in channel_mults),
        f"channel_mults must be positive integers, got {channel_mults}",
    )
    levels = [sample_size // 2**level for level in range(len(channel_mults))]
    need(
        sample_size % 2 ** (len(channel_mults) - 1) == 0,
        f"sample_size {sample_size} is not divisible by 2**{len(channel_mults) - 1} ({len(channel_mults)} levels)",
    )
    for mult in channel_mults:
        ch = base_channels * mult
        need(ch % norm_num_groups == 0, f"{ch} channels cannot be split into {norm_num_groups} GroupNorm groups")
    missing = [r for r in attention_resolutions if r not in levels]
    need(
        not missing,
        f"attention_resolutions {missing} are not level resolutions {levels} of sample_size {sample_size}",
        hint="list spatial sizes the network passes through, e.g. (16, 8) for 64x64 with 4 levels",
    )
    for level, size in enumerate(levels):
        ch = base_channels * channel_mults[level]
        need(
            size not in attention_resolutions or ch % num_heads == 0,
            f"{ch} channels at resolution {size} cannot be split into {num_heads} heads",
        )
    if num_units is not None:
        need(
            isinstance(num_units, int) and num_units >= 2,
            f"num_units must be clusters + 1 (>= 2) or None, got {num_units!r}",
        )
        need(units_per_frame >= 1, f"units_per_frame must be >= 1, got {units_per_frame}")
        need(unit_embed_dim >= 1, f"unit_embed_dim must be >= 1, got {unit_embed_dim}")
        need(
            audio_conv_kernel >= 1 and audio_conv_kernel % 2 == 1,
            f"audio_conv_kernel must be a positive odd number (centred 'same' convolution), got {audio_conv_kernel}",
        )
