"""Training datasets over a prepared dataset folder (``edidub prepare``); no video is decoded.

Both datasets index *windows*: ``window_frames`` consecutive frames of one clip, inside one
shot, every frame valid (face OK, alignment valid) — and for LSD every frame also has a
training reference (frames whose reference is -1 are never targets, so a window touching one
is not offered). Windows start every ``stride`` frames along the manifest's runs.

Items are dicts of tensors, shapes as ``[C x T x H x W]`` (the project's video convention):

* :class:`LipSyncWindowDataset` (LSD, §3.1): ``video`` [3, T, H, W] float32 in [-1, 1] (the
  aligned crops), ``mask`` [1, T, H, W] float32 {0, 1} (lower face), ``reference``
  [3, T, H, W] (crop of each frame's reference frame), ``units`` [T, 2] int64.
* :class:`SuperResWindowDataset` (SRD, §3.2): ``video`` [3, T, 224, 224], ``mask``, and
  ``low_res`` [3, T, 224, 224]: the frames reduced (``area``) to a random side in
  ``low_res_range`` — one side per window, as an LSD output has one resolution — then
  bicubic-upsampled back and clamped to [-1, 1]; each conditioning frame is, with probability
  ``prev_frame_prob``, replaced by its predecessor's (the frame before the window when it is in
  the same run, else left as is). ``low_res_size`` says the side used.

Both also carry ``clip_index`` and ``start_frame`` (int64 scalars) to trace an item to its shard.

Determinism: all augmentation randomness comes from a ``torch.Generator`` seeded per item
from ``(seed, epoch, index)`` through ``numpy.random.SeedSequence`` (well-mixed, stable across
platforms and worker counts). ``dataset.set_epoch(e)`` changes it per epoch like
``DistributedSampler.set_epoch``; the same (seed, epoch, index) always gives the same item,
so a resumed run can reproduce its batches exactly. Draw order per item: flip, then (SRD)
low-res side, then the predecessor draws.

Sizes: ``size`` is a stored crop side (64 or 224); with ``source_size`` (a stored side) the
items are read from those crops and reduced to ``size`` by area averaging (masks: area
average >= 0.5) — the tiny networks train on 32 px LSD windows from the 64 px crops
(``size=32, source_size=64``) and 64 px SRD windows from the 224 px crops.

Horizontal flip (``flip=True``: probability 0.5) mirrors video, mask and reference/low_res
together; units are unchanged (speech has no left and right).
"""

from __future__ import annotations

import os
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from edidub_engine.errors import InvalidArgumentError

from .prepare import CROP_SIZES, read_manifest

__all__ = ["LipSyncWindowDataset", "SuperResWindowDataset", "item_generator"]

_MAX_OPEN_SHARDS = 64


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The per-item augmentation generator for ``(seed, epoch, index)``."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(index)]).generate_state(2, dtype=np.uint32)
    g = torch.Generator()
    g.manual_seed((int(state[0]) << 31) ^ int(state[1]))
    return g


def _to_video(frames: np.ndarray) -> torch.Tensor:
    """[T, H, W, 3] uint8 → [3, T, H, W] float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def _to_mask(masks: np.ndarray) -> torch.Tensor:
    """[T, H, W] uint8 → [1, T, H, W] float32 {0, 1}."""
    return torch.from_numpy(np.ascontiguousarray(masks)).unsqueeze(0).float()


def _resize_video(video: torch.Tensor, size: int) -> torch.Tensor:
    """[C, T, H, W] → [C, T, size, size] by area averaging (an anti-aliased reduction); unchanged at its size."""
    if video.shape[-1] == size and video.shape[-2] == size:
        return video
    return F.interpolate(video.transpose(0, 1), size=(size, size), mode="area").transpose(0, 1).contiguous()


def _resize_mask(mask: torch.Tensor, size: int) -> torch.Tensor:
    """[1, T, H, W] {0, 1} → [1, T, size, size] {0, 1}: area average, then at least half covered."""
    if mask.shape[-1] == size and mask.shape[-2] == size:
        return mask
    return (_resize_video(mask, size) >= 0.5).float()


class _WindowDataset(torch.utils.data.Dataset):
    """Windows over a prepared dataset's shards (see the module docstring)."""

    _runs_key = "valid_runs"

    def __init__(self, dataset_dir: str | os.PathLike, *, window_frames: int, size: int, flip: bool, seed: int, stride: int,
                 source_size: int | None = None):
        self.dataset_dir = Path(dataset_dir).expanduser()
        self.manifest = read_manifest(self.dataset_dir)
        if window_frames < 1:
            raise InvalidArgumentError(f"window_frames must be >= 1, got {window_frames}")
        if stride < 1:
            raise InvalidArgumentError(f"stride must be >= 1, got {stride}")
        sizes = tuple(self.manifest["settings"].get("crop_sizes", CROP_SIZES))
        stored = size if source_size is None else int(source_size)
        if stored not in sizes:
            raise InvalidArgumentError(f"crops of {stored} px are not in this dataset", hint=f"use one of {', '.join(map(str, sizes))}")
        if not 1 <= size <= stored:
            raise InvalidArgumentError(f"size {size} must be between 1 and the stored crops' {stored} px")
        self.stored_size = stored  # the stored crops items are read from (then reduced to ``size``)
        self.window_frames = int(window_frames)
        self.size = int(size)
        self.flip = bool(flip)
        self.seed = int(seed)
        self.stride = int(stride)
        self.epoch = 0
        self.clips: list[dict[str, Any]] = list(self.manifest["clips"])
        clip_idx, starts, run_starts = [], [], []
        for c, clip in enumerate(self.clips):
            for a, b in clip[self._runs_key]:
                s = np.arange(a, b - self.window_frames + 1, self.stride, dtype=np.int64)
                clip_idx.append(np.full(len(s), c, np.int64))
                starts.append(s)
                run_starts.append(np.full(len(s), a, np.int64))
        cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
        self._clip_index, self._start, self._run_start = cat(clip_idx), cat(starts), cat(run_starts)
        self._handles: OrderedDict[int, Any] = OrderedDict()
        self._pid = os.getpid()

    # ---------------------------------------------------------------- public
    @property
    def null_unit(self) -> int:
        """The codebook's null unit (the units' embedding table has ``null_unit + 1`` rows)."""
        return int(self.manifest["codebook"]["null_unit"])

    @property
    def vocabulary_size(self) -> int:
        return int(self.manifest["codebook"]["vocabulary_size"])

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation draws (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def window(self, index: int) -> tuple[str, int, int]:
        """``(clip name, start_frame, end_frame)`` of item ``index``."""
        c, s = int(self._clip_index[index]), int(self._start[index])
        return self.clips[c]["name"], s, s + self.window_frames

    def __len__(self) -> int:
        return len(self._start)

    # ---------------------------------------------------------------- shards
    def _shard(self, clip: int):
        from safetensors import safe_open

        if self._pid != os.getpid():  # a DataLoader worker: never share handles across processes
            self._handles.clear()
            self._pid = os.getpid()
        handle = self._handles.get(clip)
        if handle is None:
            handle = safe_open(str(self.dataset_dir / self.clips[clip]["shard"]), framework="numpy")
            self._handles[clip] = handle
            if len(self._handles) > _MAX_OPEN_SHARDS:
                self._handles.popitem(last=False)
        else:
            self._handles.move_to_end(clip)
        return handle

    def _read(self, clip: int, name: str, start: int, end: int) -> np.ndarray:
        return self._shard(clip).get_slice(name)[start:end]

    def _read_frames(self, clip: int, name: str, indices: np.ndarray) -> np.ndarray:
        """Rows ``indices`` (any order, repeats allowed) of a shard tensor, reading each distinct row once."""
        sl = self._shard(clip).get_slice(name)
        unique, inverse = np.unique(indices, return_inverse=True)
        rows = np.stack([sl[int(j) : int(j) + 1][0] for j in unique])
        return rows[inverse]

    def _locate(self, index: int) -> tuple[int, int, int]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        index = index % len(self)
        return int(self._clip_index[index]), int(self._start[index]), int(self._run_start[index])


class LipSyncWindowDataset(_WindowDataset):
    """LSD training windows: ``video``, ``mask``, ``reference`` [.., T, size, size] and ``units`` [T, 2].

    ``window_frames`` (default 25, the paper's); ``size`` 64 (LSD) or 224 (or smaller from ``source_size``); ``flip`` mirrors with
    probability 0.5; ``stride`` between window starts (default 1: every window). Only windows
    whose every frame is valid and has a reference. Warns when the dataset's exclusion window k
    is smaller than ``window_frames - 1`` (a frame's reference could then be another target
    of the same window; see :mod:`.reference`).
    """

    _runs_key = "reference_runs"

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        *,
        window_frames: int = 25,
        size: int = 64,
        flip: bool = True,
        seed: int = 0,
        stride: int = 1,
        source_size: int | None = None,
    ):
        super().__init__(dataset_dir, window_frames=window_frames, size=size, flip=flip, seed=seed, stride=stride, source_size=source_size)
        k = int(self.manifest["settings"]["exclusion_frames"])
        if k < self.window_frames - 1:
            warnings.warn(
                f"the dataset's reference exclusion window is ±{k} frames, shorter than a {self.window_frames}-frame "
                f"window: a frame's reference can be another frame of the same window (prepare with "
                f"--exclusion-frames {self.window_frames - 1} to rule that out)",
                stacklevel=2,
            )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, start, _ = self._locate(index)
        end = start + self.window_frames
        g = item_generator(self.seed, self.epoch, index)
        refs = self._read(clip, "reference", start, end)
        if (refs < 0).any():  # the manifest's runs say otherwise: the shard was replaced under us
            raise InvalidArgumentError(
                f"{self.clips[clip]['name']} frames {start}-{end - 1} lack a reference although the manifest lists them",
                hint="run `edidub prepare` again so the manifest and shards agree",
            )
        crops = f"crops_{self.stored_size}"
        video = _resize_video(_to_video(self._read(clip, crops, start, end)), self.size)
        mask = _resize_mask(_to_mask(self._read(clip, f"masks_{self.stored_size}", start, end)), self.size)
        reference = _resize_video(_to_video(self._read_frames(clip, crops, refs)), self.size)
        units = torch.from_numpy(np.ascontiguousarray(self._read(clip, "units", start, end))).long()
        if self.flip and bool(torch.rand((), generator=g) < 0.5):
            video, mask, reference = video.flip(-1), mask.flip(-1), reference.flip(-1)
        return {
            "video": video,
            "mask": mask,
            "reference": reference,
            "units": units,
            "clip_index": torch.tensor(clip, dtype=torch.int64),
            "start_frame": torch.tensor(start, dtype=torch.int64),
        }


class SuperResWindowDataset(_WindowDataset):
    """SRD training windows: ``video``, ``mask`` and ``low_res`` [.., T, size, size] (§3.2).

    ``window_frames`` default 5 (the paper's); ``low_res_range`` (inclusive) is the side the
    frames are reduced to before bicubic upsampling (paper: 32–64); ``prev_frame_prob`` is the
    probability that a conditioning frame shows its predecessor instead (the paper's value is
    not given; 0.1 is our default). Windows need valid frames only (no reference).
    """

    _runs_key = "valid_runs"

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        *,
        window_frames: int = 5,
        size: int = 224,
        low_res_range: tuple[int, int] = (32, 64),
        prev_frame_prob: float = 0.1,
        flip: bool = True,
        seed: int = 0,
        stride: int = 1,
        source_size: int | None = None,
    ):
        super().__init__(dataset_dir, window_frames=window_frames, size=size, flip=flip, seed=seed, stride=stride, source_size=source_size)
        lo, hi = (int(v) for v in low_res_range)
        if not 1 <= lo <= hi <= self.size:
            raise InvalidArgumentError(f"low_res_range {low_res_range} must satisfy 1 <= low <= high <= {self.size}")
        if not 0.0 <= prev_frame_prob <= 1.0:
            raise InvalidArgumentError(f"prev_frame_prob must be in [0, 1], got {prev_frame_prob}")
        self.low_res_range = (lo, hi)
        self.prev_frame_prob = float(prev_frame_prob)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        clip, start, run_start = self._locate(index)
        end = start + self.window_frames
        g = item_generator(self.seed, self.epoch, index)
        flip = self.flip and bool(torch.rand((), generator=g) < 0.5)
        lo, hi = self.low_res_range
        side = int(torch.randint(lo, hi + 1, (), generator=g))
        replace = torch.rand(self.window_frames, generator=g) < self.prev_frame_prob

        first = start - 1 if start > run_start else start  # the predecessor of frame 0 when it is usable
        frames = _resize_video(_to_video(self._read(clip, f"crops_{self.stored_size}", first, end)), self.size)  # [3, T', H, W]
        video = frames[:, start - first :]
        mask = _resize_mask(_to_mask(self._read(clip, f"masks_{self.stored_size}", start, end)), self.size)
        small = F.interpolate(frames.transpose(0, 1), size=(side, side), mode="area")
        up = F.interpolate(small, size=(self.size, self.size), mode="bicubic", align_corners=False).clamp_(-1.0, 1.0)
        up = up.transpose(0, 1)  # [3, T', H, W]
        own = torch.arange(self.window_frames) + (start - first)
        source = torch.where(replace & (own > 0), own - 1, own)
        low_res = up[:, source]
        if flip:
            video, mask, low_res = video.flip(-1), mask.flip(-1), low_res.flip(-1)
        return {
            "video": video.contiguous(),
            "mask": mask,
            "low_res": low_res.contiguous(),
            "low_res_size": torch.tensor(side, dtype=torch.int64),
            "clip_index": torch.tensor(clip, dtype=torch.int64),
            "start_frame": torch.tensor(start, dtype=torch.int64),
        }
