"""One shot in flight: tracked frames stream in, sections are lip-synced as soon as they are decided, restored
chunks are pasted back and encoded in order on their own thread."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
import hashlib
from typing import Any, Callable

import numpy as np
import torch

from ..config import DubSettings
from ..diffusion import Section, next_section, plan_sections
from ..errors import CancelledError
from ..pipeline import to_crops, to_tensor
from ..qc import ShotQC
from ..shot import PassthroughRange
from .mouths import MouthStage
from .track import TRACK_BLOCK_FRAMES, FrameRecord, block_entry, block_records, crop_matrix, donor_of, iter_track

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]


def _extend(passthrough: list[PassthroughRange], k: int, reason: str) -> None:
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
class _Edited:
    record: FrameRecord
    low: np.ndarray  # the LSD output crop
    base: np.ndarray  # the LSD crop it was edited from: the record's own, with its donor's mouth
    donor: Any  # mouth.Donor, or None: the frame keeps its own mouth
    run_start: int
    strength: np.float32


class ShotJob:
    """One shot in flight: tracked frames stream in, sections are lip-synced as soon as they are decided, and
    restored chunks go to the encode thread in frame order. Holds O(section) data, never the whole shot."""

    def __init__(self, pipeline: Any, cache: Any, restore_mode: str, info, start: int, n: int, settings: DubSettings, key: str,
                 original_units: np.ndarray, dub_units: np.ndarray, progress: Progress | None, should_cancel: ShouldCancel | None,
                 *, mouths: MouthStage, runs_lsd: bool = True, qc: ShotQC | None = None):
        self.pipeline, self.cache = pipeline, cache  # DubbingPipeline, InversionCache | None
        self.mouths = mouths
        self.runs_lsd = runs_lsd  # False: the moved mouths are the edit (the bundle's LSD does not improve them)
        self.info, self.start, self.n, self.settings, self.key = info, start, n, settings, key
        self.original_units, self.dub_units = original_units, dub_units
        self.progress, self.should_cancel = progress, should_cancel
        self.writer = self.patch = None
        self.native = False  # the writer takes the source's own pictures (``write_picture``), not RGB
        self.restore_mode = restore_mode  # "srd" or "bicubic"
        self.qc = qc or ShotQC()
        self.srd_tail: tuple | None = None  # (run start, end frame, restored crops, LSD crops) the next chunk continues
        self.passthrough: list[PassthroughRange] = []
        self.frames_edited = 0
        self.written = 0
        self.timings = {"track_s": 0.0, "lip_sync_s": 0.0, "restore_s": 0.0, "encode_s": 0.0}
        sections = len(plan_sections(n, section_frames=settings.section_frames, carry_frames=settings.carry_frames,
                                     min_frames=settings.window_frames))  # an estimate: passed-through frames need none
        self.steps_total = sections * (settings.steps + settings.inversion_steps) if runs_lsd else 0
        self.steps_done = 0

    # -- stage 1, on the track thread: records from the cache, else from the tracker (and into the cache)
    def records(self, selector, cache_hit: bool) -> Iterator[FrameRecord]:
        t0 = time.perf_counter()
        first = 0
        donors = self.mouths.moves_mouths
        if cache_hit:
            while first < self.n:
                entry = self.cache.get(f"{self.key}-track-{first}")
                if entry is None:  # evicted or damaged: track the rest afresh
                    break
                records = list(block_records(entry))
                if donors:  # the cache keeps no pictures: the donors' mouths are cut from the decoded frames
                    self._cut_donors(records)
                for record in records:
                    self.mouths.add(record)
                self.timings["track_s"] += time.perf_counter() - t0
                yield from records
                t0 = time.perf_counter()
                first += len(records)
        block: list[FrameRecord] = []
        for record in iter_track(self.info, self.start, self.start + self.n, selector=selector,
                                 lsd_size=self.pipeline.lsd_size, first=first, donors=donors) if first < self.n else ():
            self.mouths.add(record)
            if self.cache is not None:
                block.append(record)
                if len(block) == TRACK_BLOCK_FRAMES or record.index == self.n - 1:
                    self.cache.put(f"{self.key}-track-{block[0].index}", block_entry(block, self.pipeline.lsd_size))
                    block = []
            self.timings["track_s"] += time.perf_counter() - t0
            yield record
            t0 = time.perf_counter()

    def _cut_donors(self, records: list[FrameRecord]) -> None:
        from ..media import iter_frames

        a, b = records[0].index, records[-1].index + 1
        for record, (_, frame) in zip(records, iter_frames(self.info, self.start + a, self.start + b)):
            if record.status == "ok":
                record.donor = donor_of(record, frame, self.pipeline.lsd_size)

    # -- stage 2, on the calling thread: runs and sections as frames arrive
    def run(self, tracked, sink) -> None:
        chunk: list[_Edited] = []
        pending: list[int] = []  # [first, end) of passed-through frames not yet handed to the encoder

        def flush_pass() -> None:
            if pending:
                sink.submit(("pass", *pending), while_waiting=self.report_render)
                pending.clear()

        def flush_chunk() -> None:
            if chunk:
                sink.submit(self._restore(chunk), while_waiting=self.report_render)
                chunk.clear()

        for item in self._items(tracked):
            self._check_cancel(f"at frame {self.start + (item[1] if isinstance(item, tuple) else item.record.index)}")
            if isinstance(item, tuple):
                flush_chunk()
                _extend(self.passthrough, item[1], item[2])
                if pending and pending[1] - pending[0] >= self.settings.srd_chunk_frames:
                    flush_pass()  # a long stretch without a face is encoded as it goes
                pending[:] = [pending[0] if pending else item[1], item[1] + 1]
            else:
                flush_pass()
                offset = item.record.index - item.run_start
                if chunk and (chunk[0].run_start != item.run_start or offset % self.settings.srd_chunk_frames == 0):
                    flush_chunk()
                chunk.append(item)
                self.frames_edited += 1
            self.report_render()
        flush_chunk()
        flush_pass()

    def _items(self, tracked) -> Iterator[tuple | _Edited]:
        """Tracked records in, frames out in order: ``("pass", k, reason)`` or an :class:`_Edited` frame."""
        run: _Run | None = None
        for record in tracked:
            self._report("track", record.index + 1)
            if run is not None and (record.status != "ok" or record.cut):
                yield from self._finish(run)
                run = None
            if record.status != "ok":
                yield ("pass", record.index, record.status)
                continue
            if run is None:
                run = _Run(start=record.index, records=[])
            run.records.append(record)
            run.count += 1
            yield from self._sections(run, ended=False)
            yield from self._ready(run, ended=False)
        if run is not None:
            yield from self._finish(run)

    def _finish(self, run: _Run) -> Iterator[tuple | _Edited]:
        # A short stretch inside a shot is passed through (a face that flickers in and out is not worth a
        # seam); a face over the whole of a short shot is the editor's cut, and it is dubbed.
        whole_shot = run.start == 0 and run.count == self.n
        if run.count < self.settings.min_run_frames and not whole_shot:  # never sectioned: all its records are still here
            for record in run.records:
                yield ("pass", record.index, "too_short")
            return
        yield from self._sections(run, ended=True)
        yield from self._ready(run, ended=True)

    def _sections(self, run: _Run, *, ended: bool) -> Iterator[tuple | _Edited]:
        settings = self.settings
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
            inversion_units = self.dub_units[a:b] if moved else self.original_units[a:b]
            name = f"{self.key}-lsd-{run.start}-{section.start}-{section.end}"
            if moved and self.runs_lsd:
                plan = ",".join("-" if d is None else str(d.index) for _, d in bases).encode() + inversion_units.tobytes()
                name += "-mouths-" + hashlib.sha256(plan).hexdigest()[:16]
            cached = self.cache.get(name) if self.cache is not None and self.runs_lsd else None
            if cached is not None:  # a cached inversion: those steps are not run, so the bar must not wait for them
                self.steps_total = max(self.steps_done, self.steps_total - settings.inversion_steps)
            t0 = time.perf_counter()
            done = self.steps_done

            def report(steps: int, _total: int) -> None:
                self.steps_done = done + steps
                self.steps_total = max(self.steps_total, self.steps_done)
                self._report("lip-sync", self.steps_done, self.steps_total)

            if self.runs_lsd:
                output, latent = self.pipeline.lip_sync_section(
                    base_crops, np.stack([r.mask for r in records]),
                    inversion_units, self.dub_units[a:b], section=section, carried=carried,
                    latent=None if cached is None else cached["latent"], settings=settings, tone_reference=tone,
                    progress=report, should_cancel=self.should_cancel,
                )
            else:  # the actor's own mouths as they were moved, without the network's edit (see ShotRenderer.lsd_mode)
                output = to_tensor(base_crops)
                if carried is not None:
                    output[:, :, : section.carry] = carried.to(output.device, output.dtype)
                latent = None
            self.timings["lip_sync_s"] += time.perf_counter() - t0
            if self.cache is not None and cached is None and latent is not None:
                self.cache.put(name, {"latent": latent.detach().cpu()})
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

    def _ready(self, run: _Run, *, ended: bool) -> Iterator[_Edited]:
        """Edited frames whose cross-fade strength is known: the run has ended, or enough frames follow them."""
        fade = self.settings.crossfade_frames
        ramp_out = ended and run.start + run.count < self.n
        while run.ready and (ended or run.count > run.ready[0][0] + fade):
            i, record, low, base, donor = run.ready.popleft()
            left = run.count - 1 - i if ramp_out else None
            yield _Edited(record, low, base, donor, run.start, ramp_strength(i, fade, ramp_in=run.start > 0, left=left))

    # -- stage 3: SRD on the calling thread, paste-back and encode on the encode thread
    def _restore(self, chunk: list[_Edited]) -> tuple:
        from ..face import lower_face_mask, warp_crop
        from ..media import iter_frames
        from ..mouth.composite import apply_transplant

        t0 = time.perf_counter()
        size = self.pipeline.srd_size
        a, b = chunk[0].record.index, chunk[-1].record.index + 1
        matrices = [crop_matrix(e.record.matrix, size) for e in chunk]
        moved, crops, source_crops = [], [], []
        for e, (_, frame), m in zip(chunk, iter_frames(self.info, self.start + a, self.start + b), matrices):
            # The donor's mouth goes into the native frame first; the restore then works on that picture.
            transplant = self.mouths.native(frame, e.record, e.donor, float(e.strength))
            moved.append(transplant)
            source_crops.append(warp_crop(frame, m, size))
            crops.append(source_crops[-1] if transplant is None else warp_crop(apply_transplant(frame, transplant), m, size))
        crops, source_crops = np.stack(crops), np.stack(source_crops)
        masks = np.stack([lower_face_mask(e.record.landmarks, m, size) > 0.5 for e, m in zip(chunk, matrices)])
        low = np.stack([e.low for e in chunk])
        tail = self.srd_tail
        context = tail[2:] if tail is not None and tail[0] == chunk[0].run_start and tail[1] == a else None
        restored = self.pipeline.restore(crops, masks, low, seed=self.settings.seed, first_frame=self.start + a,
                                         low_source=np.stack([e.base for e in chunk]), context=context,
                                         mode=self.restore_mode, settings=self.settings, should_cancel=self.should_cancel)
        keep = max(0, self.settings.srd_window_frames - self.settings.srd_window_stride)
        self.srd_tail = (chunk[0].run_start, b, restored[len(restored) - keep:], low[len(low) - keep:]) if keep else None
        self.timings["restore_s"] += time.perf_counter() - t0
        return ("edit", a, b, restored, crops, source_crops, matrices, masks, [e.strength for e in chunk],
                [e.record.landmarks for e in chunk], moved)

    def write(self, item: tuple) -> None:
        """Encode frames ``[a, b)`` in order (the encode thread): passed through as decoded, or pasted back.

        The patch, when asked for, gets the edited region alone with the matte as alpha: its
        colour is the composited frame and its alpha the feathered matte, so laid over the
        untouched original the core of the edit is exact and everything else is the original.
        """
        import cv2

        from ..face import add_changes, apply_change, feathered_matte, paste_change
        from ..media import NativePicture, iter_pictures, to_rgb
        from ..mouth.composite import apply_transplant, transplant_change

        t0 = time.perf_counter()
        kind, a, b = item[:3]
        native = self.native
        held = [None, None]  # a picture held over several grid frames is converted to RGB once

        def rgb(picture) -> np.ndarray:
            if held[0] is not picture:
                held[:] = picture, to_rgb(picture)
            return held[1]

        pictures = iter_pictures(self.info, self.start + a, self.start + b)
        if kind == "pass":
            for _, picture in pictures:
                if native:
                    self.writer.write_picture(picture)  # the source's own samples
                else:
                    self.writer.write(rgb(picture))
                if self.patch is not None:
                    self.patch.write(_layer(rgb(picture), None))
                self.written += 1
        else:
            restored, crops, source_crops, matrices, masks, strength, landmarks, moved = item[3:]
            feather = self.settings.feather_px * self.pipeline.srd_size / 224.0
            for k, (_, picture) in enumerate(pictures):
                frame = rgb(picture)
                matte = feathered_matte(masks[k].astype(np.float32), feather_px=feather) * strength[k]
                # The new mouth (a donor's, moved in natively), then the LSD's change on top of it (relative to the
                # crops it was restored from): one change to the source frame.
                change = add_changes(transplant_change(frame, moved[k]),
                                     paste_change(apply_transplant(frame, moved[k]), restored[k], crops[k], matrices[k], matte))
                composited = apply_change(frame, change)
                alpha = cv2.warpAffine(matte, matrices[k], (self.info.width, self.info.height),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
                if moved[k] is not None:
                    m = moved[k]
                    box = alpha[m.y0 : m.y0 + m.alpha.shape[0], m.x0 : m.x0 + m.alpha.shape[1]]
                    np.maximum(box, m.alpha, out=box)
                self.qc.add_crop(restored[k], source_crops[k], masks[k], landmarks[k], matrices[k], intended=crops[k], frame=a + k)
                self.qc.add_texture(composited, frame, alpha > 0.5)
                self.qc.add_frame(composited)
                self.qc.add_mouth(a + k, composited, landmarks[k])
                if not native:
                    self.writer.write(composited)
                elif change is None:
                    self.writer.write_picture(picture)
                else:  # the change alone goes into the source's own planes (as the codec stores them): nothing else moves
                    own = NativePicture(self.writer.conform(picture), self.info.color)
                    own.add_change(*change)
                    self.writer.write_picture(own.to_frame())
                if self.patch is not None:
                    self.patch.write(_layer(composited, alpha))
                self.written += 1
        self.timings["encode_s"] += time.perf_counter() - t0

    def finish_progress(self) -> None:
        """Every stage ends at its total (the step count was an estimate: passed-through frames need none).
        Only a count that is not at its end yet is reported again, so the last stage seen stays the render."""
        if self.steps_done != self.steps_total:
            self.steps_total = self.steps_done
            self._report("lip-sync", self.steps_done, self.steps_done)
        self.report_render()

    # -- callbacks, on the calling thread only
    def report_render(self) -> None:
        """Frames the encoder thread has written so far (called from the calling thread, also while it waits on it)."""
        self._report("render", self.written)

    def _report(self, stage: str, done: int, total: int | None = None) -> None:
        if self.progress is not None:
            self.progress(stage, int(done), int(self.n if total is None else total))

    def _check_cancel(self, where: str) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise CancelledError(f"cancelled {where}")


def _layer(frame: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    rgba = np.empty((*frame.shape[:2], 4), np.uint8)
    rgba[..., :3] = frame
    rgba[..., 3] = 0 if alpha is None else np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
    return rgba


def passthrough_summary(passthrough: list[PassthroughRange]) -> str:
    counts: dict[str, int] = {}
    for r in passthrough:
        counts[r.reason] = counts.get(r.reason, 0) + r.end_frame - r.start_frame
    return ", ".join(f"{v} frame(s) {k.replace('_', ' ')}" for k, v in counts.items()) or "no frames"


__all__ = ["ShotJob", "passthrough_summary", "ramp_strength"]
