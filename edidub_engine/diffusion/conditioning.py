"""Conditioning dictionaries: slicing in time, stacking in batch, null conditioning and guidance.

A cond is ``dict[str, Tensor]`` with the batch on axis 0. Time lies on axis 2
of 5-D video tensors (``[N, C, T, H, W]``: reference frames, mask) and on
axis 1 of 3-D unit tensors (``[N, T, 2]``, int64); any other tensor has no time
axis and is shared by every window. The diffusion code never looks inside a
cond beyond that rule, so the network's closure decides what each entry means.

A null cond is an *override*: its entries replace cond's in the unconditional
branch and keys it lacks are shared — ``{"units": full of the null index}`` is
enough for the paper's guidance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from edidub_engine.errors import InvalidArgumentError

__all__ = [
    "Cond",
    "Denoiser",
    "concat_conds",
    "drop_cond",
    "guided_epsilon",
    "merge_null_cond",
    "null_cond_for",
    "slice_cond",
    "time_axis",
    "validate_cond",
    "with_mask",
]

Cond = Mapping[str, Tensor]
# denoiser(x_t [B, C, T, H, W], timestep int64 [B], cond) -> epsilon [B, C, T, H, W]
Denoiser = Callable[[Tensor, Tensor, Cond], Tensor]


def time_axis(value: Tensor) -> int | None:
    """The time axis of a cond tensor by the shared convention, or ``None`` when it has none."""
    if value.ndim == 5:
        return 2
    if value.ndim == 3:
        return 1
    return None


def validate_cond(cond: Cond, *, batch: int, frames: int, what: str = "cond") -> None:
    """Every entry is a tensor with ``batch`` rows and, where it has a time axis, ``frames`` frames."""
    if not isinstance(cond, Mapping):
        raise InvalidArgumentError(f"{what} must be a dict of tensors, got {type(cond).__name__}")
    for key, value in cond.items():
        if not isinstance(value, Tensor):
            raise InvalidArgumentError(f"{what}[{key!r}] is a {type(value).__name__}, not a tensor")
        if value.ndim == 0 or value.shape[0] != batch:
            raise InvalidArgumentError(
                f"{what}[{key!r}] has shape {tuple(value.shape)}; its axis 0 must be the batch of {batch}"
            )
        axis = time_axis(value)
        if axis is not None and value.shape[axis] != frames:
            raise InvalidArgumentError(
                f"{what}[{key!r}] has {value.shape[axis]} frames on axis {axis}, the video has {frames}",
                hint="5-D cond tensors carry time on axis 2, 3-D unit tensors on axis 1",
            )


def slice_cond(cond: Cond, start: int, end: int) -> dict[str, Tensor]:
    """Frames ``[start, end)`` of every entry with a time axis; entries without one are kept whole."""
    out = {}
    for key, value in cond.items():
        axis = time_axis(value)
        out[key] = value if axis is None else value.narrow(axis, start, end - start)
    return out


def concat_conds(conds: Sequence[Cond]) -> dict[str, Tensor]:
    """Stack conds with the same keys along the batch axis (windows, or cond and null cond)."""
    keys = conds[0].keys()
    return {key: torch.cat([c[key] for c in conds], 0) for key in keys}


def merge_null_cond(cond: Cond, null_cond: Cond) -> dict[str, Tensor]:
    """The full unconditional cond: cond with null_cond's entries put in their place."""
    unknown = set(null_cond) - set(cond)
    if unknown:
        raise InvalidArgumentError(f"null_cond has keys {sorted(unknown)} that cond lacks")
    for key, value in null_cond.items():
        if value.shape != cond[key].shape:
            raise InvalidArgumentError(
                f"null_cond[{key!r}] has shape {tuple(value.shape)}, cond[{key!r}] {tuple(cond[key].shape)}"
            )
    return {**cond, **null_cond}


def null_cond_for(cond: Cond, *, null_unit: int, keys: Sequence[str] = ("units",)) -> dict[str, Tensor]:
    """The null cond of the paper: ``keys`` (the speech units) filled with the null unit index."""
    missing = [key for key in keys if key not in cond]
    if missing:
        raise InvalidArgumentError(f"cond lacks {missing} to replace with the null unit")
    return {key: torch.full_like(cond[key], null_unit) for key in keys}


def with_mask(cond: Cond, mask: Tensor, key: str | None) -> dict[str, Tensor]:
    """cond with ``cond[key] = mask`` (the mask in use); unchanged when key is ``None``."""
    return dict(cond) if key is None else {**cond, key: mask}


def drop_cond(cond: Cond, null_cond: Cond, drop: Tensor) -> dict[str, Tensor]:
    """Per sample, cond or the null cond: ``drop`` is bool ``[N]``, True takes the null entries."""
    out = dict(cond)
    for key, null in null_cond.items():
        value = cond[key]
        where = drop.to(value.device).view(-1, *([1] * (value.ndim - 1)))
        out[key] = torch.where(where, null.to(value.device, value.dtype), value)
    return out


def guided_epsilon(
    denoiser: Denoiser,
    sample: Tensor,
    timestep: Tensor,
    cond: Cond,
    null_cond: Cond | None,
    guidance_scale: float,
    *,
    batched: bool = True,
) -> Tensor:
    """Classifier-free guidance ``ε_null + s (ε_cond − ε_null)`` in one batched denoiser call.

    ``sample`` is ``[B, C, T, H, W]``, ``timestep`` int64 ``[B]``; cond and the
    merged null cond are stacked on the batch axis so the network runs once on
    ``2B`` rows. At ``s == 1`` the formula is ε_cond itself, so the null branch is
    skipped (half the compute) and the result is the conditional prediction
    bit for bit. ``null_cond`` is the full unconditional cond (see
    :func:`merge_null_cond`). ``batched=False`` makes two calls instead (the
    reference the fast path is measured against; same result up to kernel
    rounding).
    """
    if guidance_scale == 1.0:
        return denoiser(sample, timestep, cond)
    if null_cond is None:
        raise InvalidArgumentError(
            f"guidance_scale={guidance_scale} needs a null_cond", hint="pass null_cond or set guidance_scale=1"
        )
    if not batched:
        eps_cond = denoiser(sample, timestep, cond)
        eps_null = denoiser(sample, timestep, null_cond)
        return eps_null + guidance_scale * (eps_cond - eps_null)
    both = concat_conds([cond, null_cond])
    eps = denoiser(torch.cat([sample, sample], 0), torch.cat([timestep, timestep], 0), both)
    eps_cond, eps_null = eps.chunk(2, 0)
    return eps_null + guidance_scale * (eps_cond - eps_null)
