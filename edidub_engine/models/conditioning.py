"""Speech-unit conditioning of the LSD U-Net (paper §3.1, "Quantized speech representation").

Audio and video are aligned exactly (two 50 Hz units per 25 fps frame), so the
paper skips cross-attention: each frame's units are embedded, joined into one
vector per frame, smoothed over time by a depth-wise 1-D convolution, and every
residual block turns that vector into a per-frame scale and shift of its
normalised activations (adaptive instance normalisation, see
:class:`~edidub_engine.models.unet_3d.ResBlock3D`).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UnitConditioner"]


class UnitConditioner(nn.Module):
    """Speech units per frame → one conditioning vector per frame.

    :param num_units: table size: the codebook's clusters plus one null unit
        (the last index), which stands for "no audio" and is the unconditional
        branch of classifier-free guidance.
    :param units_per_frame: units that fall in one video frame (2 = 50 Hz units at 25 fps).
    :param embed_dim: width ``d`` of one unit's embedding; a frame's vector has
        ``units_per_frame * d`` channels (:attr:`out_channels`).
    :param kernel_size: odd temporal extent of the depth-wise convolution, in
        frames; frame ``t``'s vector sees units of frames ``t - k//2 .. t + k//2``
        (zero-padded at the window's ends, "same" length).
    """

    def __init__(self, *, num_units: int, units_per_frame: int, embed_dim: int, kernel_size: int):
        super().__init__()
        self.num_units = num_units
        self.units_per_frame = units_per_frame
        self.out_channels = units_per_frame * embed_dim
        self.embedding = nn.Embedding(num_units, embed_dim)
        # groups = channels: each channel is filtered over time on its own (depth-wise), as in the paper.
        self.temporal_conv = nn.Conv1d(
            self.out_channels,
            self.out_channels,
            kernel_size,
            padding=kernel_size // 2,
            groups=self.out_channels,
        )

    def forward(self, units: torch.Tensor) -> torch.Tensor:
        """Embed units.

        :param units: [N x T x units_per_frame] integer unit indices.
        :return: [N x T x out_channels] one vector per frame.
        """
        n, t, _ = units.shape
        emb = self.embedding(units)  # [N x T x U x d]
        emb = emb.reshape(n, t, self.out_channels)  # the frame's units side by side: [N x T x U*d]
        return self.temporal_conv(emb.transpose(1, 2)).transpose(1, 2)
