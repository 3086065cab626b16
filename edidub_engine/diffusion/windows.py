"""Where MultiDiffusion windows and long-shot sections fall in time (pure index arithmetic).

Windows (paper §3.1, §4.2): ``window_frames`` long, every ``window_stride``
frames, the last one aligned to the end so every frame is covered; a clip no
longer than one window is one window of its own length. Each frame's fused
value is the uniform average of the windows covering it.

Sections (§4.2): ``section_frames`` long; each one after the first begins with
``carry_frames`` frames of the previous sections' output, kept under a zero
mask, then new frames. When the tail would be shorter than one window its
section reaches further back (a longer carry-over) so the network never sees a
clip shorter than it was trained on — a 3-frame tail would otherwise be
generated with almost no temporal context.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from edidub_engine.errors import InvalidArgumentError

__all__ = ["Section", "next_section", "plan_sections", "window_starts", "window_weights"]


def _check_frames(num_frames: int) -> None:
    if num_frames < 1:
        raise InvalidArgumentError(f"a clip of {num_frames} frames has nothing to process")


def window_starts(num_frames: int, *, window_frames: int, window_stride: int) -> list[int]:
    """First frame of every window; each window is ``min(window_frames, num_frames)`` long."""
    _check_frames(num_frames)
    if num_frames <= window_frames:
        return [0]
    starts = list(range(0, num_frames - window_frames + 1, window_stride))
    if starts[-1] + window_frames < num_frames:
        starts.append(num_frames - window_frames)
    return starts


def window_weights(
    num_frames: int, *, window_frames: int, window_stride: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Fusion weights ``[num_windows, num_frames]``: ``1 / (windows covering the frame)`` inside a window, 0 outside.

    Every column sums to 1, so the fused frame is a plain average of its
    windows' predictions (MultiDiffusion's least-squares solution with uniform
    per-window weights).
    """
    starts = window_starts(num_frames, window_frames=window_frames, window_stride=window_stride)
    length = min(window_frames, num_frames)
    cover = torch.zeros(len(starts), num_frames, dtype=torch.float64)
    for row, start in enumerate(starts):
        cover[row, start : start + length] = 1.0
    return (cover / cover.sum(0, keepdim=True)).to(dtype)


@dataclass(frozen=True, kw_only=True)
class Section:
    """Frames ``[start, end)`` of the shot; the first ``carry`` of them are earlier output, kept as they are."""

    index: int
    start: int
    end: int
    carry: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def new_start(self) -> int:
        """First frame this section generates."""
        return self.start + self.carry


def plan_sections(num_frames: int, *, section_frames: int, carry_frames: int, min_frames: int = 1) -> list[Section]:
    """Sections covering ``[0, num_frames)``; each new frame belongs to exactly one section.

    ``min_frames`` (normally one window) is the shortest section worth
    running: a shorter tail takes a longer carry-over instead.
    """
    _check_frames(num_frames)
    if not 0 <= carry_frames < section_frames:
        raise InvalidArgumentError(f"carry_frames={carry_frames} must be in [0, section_frames={section_frames})")
    min_frames = max(1, min(min_frames, section_frames))
    sections = [Section(index=0, start=0, end=min(section_frames, num_frames), carry=0)]
    while sections[-1].end < num_frames:
        done = sections[-1].end
        start = done - carry_frames
        end = min(start + section_frames, num_frames)
        start = min(start, max(0, end - min_frames))
        sections.append(Section(index=len(sections), start=start, end=end, carry=done - start))
    return sections


def next_section(
    previous: Section | None,
    available: int,
    *,
    finished: bool,
    section_frames: int,
    carry_frames: int,
    min_frames: int = 1,
) -> Section | None:
    """The section after ``previous`` once it is decided, for shots whose length is not known yet.

    ``available`` frames have arrived; ``finished`` says no more will. Returns
    ``None`` while the next section still needs frames (or when there is none).
    Fed every frame count up to the end, it gives exactly :func:`plan_sections`
    of the final length, so a streamed shot is cut the same way as a whole one.
    """
    if not 0 <= carry_frames < section_frames:
        raise InvalidArgumentError(f"carry_frames={carry_frames} must be in [0, section_frames={section_frames})")
    min_frames = max(1, min(min_frames, section_frames))
    done = 0 if previous is None else previous.end
    if done >= available:
        return None
    start = 0 if previous is None else done - carry_frames
    if start + section_frames <= available:
        end = start + section_frames
    elif finished:
        end = available
    else:
        return None
    if previous is not None:
        start = min(start, max(0, end - min_frames))
    return Section(index=0 if previous is None else previous.index + 1, start=start, end=end, carry=done - start)
