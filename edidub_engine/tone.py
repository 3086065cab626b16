"""Keep the source's tone under the mask: remove the colour cast the LSD puts on the whole lower face.

Dubbing edits the mouth and keeps the original's lighting. Under classifier-free guidance (scale 5) a
small network's audio branch also carries the speaker's colour (log-mel units are speaker-dependent),
and the guidance multiplies it into a cast over the whole masked region: blue, green or purple lower
faces that change from frame to frame. The source's own pixels under the mask say what the tone
was — but only where the edit is not meant to change them: the new mouth differs from the old one by
design, and a median that counts its pixels leans toward it and shifts the whole lower face the other
way (skin 8 levels off came out +1.8, +5.3 and +17 levels off when a new mouth covered 17, 33 and 50 %
of the mask). So the per-frame, per-channel *median* of ``edited - source`` is taken over a
``reference`` region — the lower face outside the lips and the moved mouth, the cheeks and chin — and
subtracted inside the whole mask. On the starter's own-speech round trip (``latentsync_demo2``, frames
335-419 at the LSD size) removing the cast takes 26.99 to 33.27 dB inside the mask.
"""

from __future__ import annotations

import torch

__all__ = ["match_tone"]


def match_tone(edited: torch.Tensor, source: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """``edited`` with each frame's median colour offset from ``source`` over ``reference`` removed inside ``mask``.

    ``edited``/``source`` ``[N x C x T x H x W]``, ``mask``/``reference`` ``[N x 1 x T x H x W]`` (> 0.5 inside).
    ``mask`` is the region the LSD regenerated; ``reference`` (default: ``mask``) the part of it the edit is not
    meant to change, where the cast is measured. Frames with no reference pixel and pixels outside the mask are
    unchanged.
    """
    inside = mask > 0.5
    measured = inside if reference is None else (reference > 0.5) & inside
    difference = torch.where(measured, edited - source, torch.nan).flatten(3)  # [N x C x T x HW], NaN off the reference
    offset = difference.nanmedian(dim=-1).values.nan_to_num(0.0)  # a frame without a reference pixel: no offset
    return torch.where(inside, edited - offset[..., None, None], edited)
