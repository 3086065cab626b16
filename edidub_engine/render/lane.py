"""One face of a shot in flight: its stretches of usable frames, its LSD sections, its mouths and its line.

A shot dubs one face per line (a two-shot: two lanes, each with its own track, mask, mouths, dub line, tone match
and QC); the job (:mod:`.job`) feeds every lane the same frames in order and merges what they give back per frame.
A lane turns its face's records into frames out, in order: ``("pass", k, reason)`` for a frame it leaves as it is,
or an :class:`Edited` frame with its LSD output, the crop that edit started from and its cross-fade strength.
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..diffusion import Section, next_section
from ..pipeline import to_crops, to_tensor
from ..qc import ShotQC
from ..shot import PassthroughRange
from .mouths import MouthStage
from .track import FrameRecord


def extend_passthrough(passthrough: list[PassthroughRange], k: int, reason: str) -> None:
    """Add frame ``k`` (in order) to the passed-through ranges, merging with the last one when they touch."""
    if reason == "ok":
        return
    if passthrough and passthrough[-1].end_frame == k and passthrough[-1].reason == reason:
        last = passthrough.pop()
        passthrough.append(PassthroughRange(last.start_frame, k + 1, reason))
    else:
        passthrough.append(PassthroughRange(k, k + 1, reason))


def ramp_strength(i: int, frames: int, *, ramp_in: bool, left: int | None) -> np.float32:
    """Edit strength of frame ``i`` of a run: ramps in over ``frames`` after a passed-through frame and out
    before one. Known before the run ends: ``left`` is how many frames of the run follow ``i`` when the run
    ends before the shot does (None: no ramp-out)."""
    value = np.float32(1.0)
    if frames > 0:
        if ramp_in and i < frames:
            value = min(value, np.float32(i + 1) / (frames + 1))
        if left is not None and left < frames:
            value = min(value, np.float32(left + 1) / (frames + 1))
    return value


@dataclass
class _Run:
    """The stretch of usable frames being edited: records still needed, sections done, output to carry."""

    start: int  # shot frame of its first frame
    records: list[FrameRecord]  # run frames [base, count)
    base: int = 0
    count: int = 0
    previous: Section | None = None
    tail: torch.Tensor | None = None  # LSD output of run frames [tail_start, previous.end)
    tail_start: int = 0
    ready: deque = field(default_factory=deque)  # (run frame, record, LSD crop, base, donor) awaiting their strength
    bases: dict = field(default_factory=dict)  # run frame → (the LSD crop the edit started from, its donor)
    last_donor: int | None = None  # the shot frame whose mouth the last planned frame shows


@dataclass(slots=True)
class Edited:
    """One edited frame of one face, on its way to the restore stage."""

    lane: int
    record: FrameRecord
    low: np.ndarray  # the LSD output crop
    base: np.ndarray  # the LSD crop it was edited from: the record's own, with its donor's mouth
    donor: Any  # mouth.Donor, or None: the frame keeps its own mouth
    run_start: int
    strength: np.float32


class FaceLane:
    """One face: feed it the shot's records of that face in order; it yields frames out in order."""

    def __init__(self, job: Any, index: int, *, face: str, key: str, dub_units: np.ndarray, mouths: MouthStage, qc: ShotQC):
        self.job, self.index, self.face, self.key = job, index, face, key  # job: the ShotJob (pipeline, settings, progress)
        self.dub_units, self.mouths, self.qc = dub_units, mouths, qc
        self.passthrough: list[PassthroughRange] = []
        self.frames_edited = 0
        self.srd_tail: tuple | None = None  # (run start, end frame, restored crops, LSD crops) the next chunk continues
        self._run: _Run | None = None

    def feed(self, record: FrameRecord) -> Iterator[tuple | Edited]:
        """The face's next record (frames in order); yields the frames it can give out now."""
        run = self._run
        if run is not None and (record.status != "ok" or record.cut):
            yield from self._finish(run)
            run = self._run = None
        if record.status != "ok":
            yield ("pass", record.index, record.status)
            return
        if run is None:
            run = self._run = _Run(start=record.index, records=[])
        run.records.append(record)
        run.count += 1
        yield from self._sections(run, ended=False)
        yield from self._ready(run, ended=False)

    def end(self) -> Iterator[tuple | Edited]:
        """The shot has no more frames: the rest of this face's frames."""
        if self._run is not None:
            yield from self._finish(self._run)
            self._run = None

    def _finish(self, run: _Run) -> Iterator[tuple | Edited]:
        # A short stretch inside a shot is passed through (a face that flickers in and out is not worth a
        # seam); a face over the whole of a short shot is the editor's cut, and it is dubbed.
        whole_shot = run.start == 0 and run.count == self.job.n
        if run.count < self.job.settings.min_run_frames and not whole_shot:  # never sectioned: all its records are still here
            for record in run.records:
                yield ("pass", record.index, "too_short")
            return
        yield from self._sections(run, ended=True)
        yield from self._ready(run, ended=True)

    def _sections(self, run: _Run, *, ended: bool) -> Iterator[tuple | Edited]:
        job, settings = self.job, self.job.settings
        while ended or run.count >= settings.min_run_frames:
            section = next_section(run.previous, run.count, finished=ended, section_frames=settings.section_frames,
                                   carry_frames=settings.carry_frames, min_frames=settings.window_frames)
            if section is None:
                return
            records = run.records[section.start - run.base : section.end - run.base]
            a, b = run.start + section.start, run.start + section.end
            carried = None
            if section.carry:
                at = section.start - run.tail_start
                carried = run.tail[:, :, at : at + section.carry]
            # The mouths: each new frame's donor, and the LSD crops with those mouths (carried frames keep theirs).
            donors = self.mouths.plan(records[section.carry:], run.last_donor)
            for j, donor in enumerate(donors, start=section.carry):
                run.bases[section.start + j] = (self.mouths.lsd_base(records[j], donor), donor)
            if donors:
                run.last_donor = donors[-1].index if donors[-1] is not None else records[-1].index
            bases = [run.bases[section.start + j] for j in range(section.frames)]
            moved = any(d is not None for _, d in bases)
            base_crops = np.stack([c for c, _ in bases])
            tone = np.stack([self.mouths.tone_reference(r, c) for r, (c, _) in zip(records, bases)])
            # What the LSD edits is the clip with its new mouths, inverted with the line that clip now speaks;
            # a section whose mouths all stay is the source itself, and its inversion is cached across dubs.
            inversion_units = self.dub_units[a:b] if moved else job.original_units[a:b]
            name = f"{self.key}-lsd-{run.start}-{section.start}-{section.end}"
            if moved and job.runs_lsd:
                plan = ",".join("-" if d is None else str(d.index) for _, d in bases).encode() + inversion_units.tobytes()
                name += "-mouths-" + hashlib.sha256(plan).hexdigest()[:16]
            cached = job.cache.get(name) if job.cache is not None and job.runs_lsd else None
            if cached is not None:  # a cached inversion: those steps are not run, so the bar must not wait for them
                job.steps_total = max(job.steps_done, job.steps_total - settings.inversion_steps)
            t0 = time.perf_counter()
            if job.runs_lsd:
                output, latent = job.pipeline.lip_sync_section(
                    base_crops, np.stack([r.mask for r in records]),
                    inversion_units, self.dub_units[a:b], section=section, carried=carried,
                    latent=None if cached is None else cached["latent"], settings=settings, tone_reference=tone,
                    progress=job.step_reporter(), should_cancel=job.should_cancel,
                )
            else:  # the actor's own mouths as they were moved, without the network's edit (see ShotRenderer.runs_lsd)
                output = to_tensor(base_crops)
                if carried is not None:
                    output[:, :, : section.carry] = carried.to(output.device, output.dtype)
                latent = None
            job.timings["lip_sync_s"] += time.perf_counter() - t0
            if job.cache is not None and cached is None and latent is not None:
                job.cache.put(name, {"latent": latent.detach().cpu()})
            crops = to_crops(output)
            for j in range(section.carry, section.frames):
                run.ready.append((section.start + j, records[j], crops[j], *bases[j]))
            keep = min(section.frames, max(settings.carry_frames, settings.window_frames))
            run.tail, run.tail_start = output[:, :, -keep:], section.end - keep
            run.previous = section
            drop = run.tail_start - run.base  # records the next section cannot reach back to
            if drop > 0:
                del run.records[:drop]
                for k in range(run.base, run.base + drop):
                    run.bases.pop(k, None)
                run.base += drop
            yield from self._ready(run, ended=False)

    def _ready(self, run: _Run, *, ended: bool) -> Iterator[Edited]:
        """Edited frames whose cross-fade strength is known: the run has ended, or enough frames follow them."""
        fade = self.job.settings.crossfade_frames
        ramp_out = ended and run.start + run.count < self.job.n
        while run.ready and (ended or run.count > run.ready[0][0] + fade):
            i, record, low, base, donor = run.ready.popleft()
            left = run.count - 1 - i if ramp_out else None
            yield Edited(self.index, record, low, base, donor, run.start, ramp_strength(i, fade, ramp_in=run.start > 0, left=left))


__all__ = ["Edited", "FaceLane", "extend_passthrough", "ramp_strength"]
