"""Keep the source's tone under the mask: remove the colour cast the LSD puts on the whole lower face.

Dubbing edits the mouth and keeps the original's lighting. Under classifier-free guidance (scale 5) a
small network's audio branch also carries the speaker's colour (log-mel units are speaker-dependent),
and the guidance multiplies it into a cast over the whole masked region: blue, green or purple lower
faces that change from frame to frame. The source's own pixels under the mask say what the tone
was; the new mouth changes only a minority of them, so the per-frame, per-channel *median* of
``edited - source`` inside the mask is the cast, not the mouth, and subtracting it (inside the mask
only) restores the tone and leaves the new mouth shape alone. On the starter's own-speech round trip
(``latentsync_demo2``, frames 335-419 at the LSD size) this takes 26.99 to 33.27 dB inside the mask.
"""

from __future__ import annotations

import torch

__all__ = ["match_tone"]


def match_tone(edited: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``edited`` with each frame's median colour offset from ``source`` inside ``mask`` removed there.

    ``edited``/``source`` ``[N x C x T x H x W]``, ``mask`` ``[N x 1 x T x H x W]`` (the region the LSD
    regenerated, > 0.5 inside). Frames without a masked pixel and pixels outside the mask are unchanged.
    """
    inside = mask > 0.5
    difference = torch.where(inside, edited - source, torch.nan).flatten(3)  # [N x C x T x HW], NaN outside the mask
    offset = difference.nanmedian(dim=-1).values.nan_to_num(0.0)  # a frame without a masked pixel: no offset
    return torch.where(inside, edited - offset[..., None, None], edited)
