"""One shot in flight: tracked frames stream in, each face's sections are lip-synced as soon as they are decided
(:mod:`.lane`), and chunks of frames are restored, pasted back and encoded in order on their own thread.

A shot has a lane per face it dubs (one, or one per line of a two-shot). Every lane sees the same frames; the job
gathers what the lanes give back per frame and hands the encoder each frame once, with every face's change in it,
so a shot of several faces is decoded, restored and written in one pass. Holds O(section) data, never the whole shot.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import DubSettings
from ..diffusion import plan_sections
from ..errors import CancelledError
from ..qc import ShotQC
from ..shot import PassthroughRange
from .lane import Edited, FaceLane, extend_passthrough, ramp_strength
from .mouths import DONOR_LOOKAHEAD_FRAMES, MouthStage
from .track import TRACK_BLOCK_FRAMES, FrameRecord, block_entry, block_records, crop_matrix, donor_of

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]


@dataclass(slots=True)
class LaneEdit:
    """What the encoder needs to paste one face's edit into one frame."""

    lane: int
    restored: np.ndarray  # the restored crop at the SRD size
    crop: np.ndarray  # the crop it was restored from (the source's, with the moved mouth)
    source_crop: np.ndarray  # the source's own crop
    matrix: np.ndarray  # frame → SRD crop
    mask: np.ndarray  # the lower face at the SRD size
    strength: np.float32
    landmarks: np.ndarray
    moved: Any  # mouth.composite.MouthTransplant in the native frame, or None
    covered: bool = False  # a hand lies over the lower face: its own mouth was kept, its opening cannot be read


class ShotJob:
    """One shot in flight (see the module docstring). ``track(first)`` gives the per-frame lists of records of every
    lane from shot frame ``first`` (one list per frame, lanes in order), tracked afresh."""

    def __init__(self, pipeline: Any, cache: Any, restore_mode: str, info, start: int, n: int, settings: DubSettings,
                 original_units: np.ndarray, progress: Progress | None, should_cancel: ShouldCancel | None, *, runs_lsd: bool = True):
        self.pipeline, self.cache = pipeline, cache  # DubbingPipeline, InversionCache | None
        self.runs_lsd = runs_lsd  # False: the moved mouths are the edit (the bundle's LSD does not improve them)
        self.info, self.start, self.n, self.settings = info, start, n, settings
        self.original_units = original_units
        self.progress, self.should_cancel = progress, should_cancel
        self.writer = self.patch = None
        self.native = False  # the writer takes the source's own pictures (``write_picture``), not RGB
        self.restore_mode = restore_mode  # "srd" or "bicubic"
        self.lanes: list[FaceLane] = []
        self._watches: list[Any] | None = None  # a hand watcher per lane (CoverWatch), made once the lanes are known
        self.passthrough: list[PassthroughRange] = []  # frames no face was edited in
        self.frames_edited = 0
        self.written = 0
        self.timings = {"track_s": 0.0, "lip_sync_s": 0.0, "restore_s": 0.0, "encode_s": 0.0}
        self.steps_total = 0
        self.steps_done = 0

    def add_lane(self, *, face: str, key: str, dub_units: np.ndarray, mouths: MouthStage, qc: ShotQC | None = None) -> FaceLane:
        """A face to dub: ``key`` names its cache entries (its track and inversions), ``dub_units`` its line's units."""
        lane = FaceLane(self, len(self.lanes), face=face, key=key, dub_units=dub_units, mouths=mouths, qc=qc or ShotQC())
        self.lanes.append(lane)
        if self.runs_lsd:
            settings = self.settings
            sections = len(plan_sections(self.n, section_frames=settings.section_frames, carry_frames=settings.carry_frames,
                                         min_frames=settings.window_frames))  # an estimate: passed-through frames need none
            self.steps_total += sections * (settings.steps + settings.inversion_steps)
        return lane

    def step_reporter(self) -> Callable[[int, int], None]:
        """A section's ``progress(steps, total)`` that moves the shot's lip-sync count on from where it stands."""
        done = self.steps_done

        def report(steps: int, _total: int) -> None:
            self.steps_done = done + steps
            self.steps_total = max(self.steps_total, self.steps_done)
            self._report("lip-sync", self.steps_done, self.steps_total)

        return report

    # -- stage 1, on the track thread: records from the cache, else from the tracker (and into the cache)
    def records(self, track: Callable[[int, bool], Iterator[list[FrameRecord]]], cache_hit: bool) -> Iterator[list[FrameRecord]]:
        t0 = time.perf_counter()
        first = 0
        donors = any(lane.mouths.moves_mouths for lane in self.lanes)
        if cache_hit:
            while first < self.n:
                entries = [self.cache.get(f"{lane.key}-track-{first}") for lane in self.lanes]
                if any(entry is None for entry in entries):  # evicted or damaged: track the rest afresh
                    break
                per_lane = [list(block_records(entry)) for entry in entries]
                if donors:  # the cache keeps no pictures: the donors' mouths are cut from the decoded frames
                    self._cut_donors(per_lane)
                frames = list(zip(*per_lane))
                self.timings["track_s"] += time.perf_counter() - t0
                yield from (list(r) for r in frames)
                t0 = time.perf_counter()
                first += len(frames)
            for watch in self._watches or []:
                watch.close()
        blocks: list[list[FrameRecord]] = [[] for _ in self.lanes]
        for records in track(first, donors) if first < self.n else ():
            if self.cache is not None:
                for lane, block, record in zip(self.lanes, blocks, records):
                    block.append(record)
                    if len(block) == TRACK_BLOCK_FRAMES or record.index == self.n - 1:
                        self.cache.put(f"{lane.key}-track-{block[0].index}", block_entry(block, self.pipeline.lsd_size))
                        block.clear()
            self.timings["track_s"] += time.perf_counter() - t0
            yield records
            t0 = time.perf_counter()

    def _to_mouths(self, records) -> None:
        """Bank a frame's donors (on the lip-sync thread, in frame order, so the banks hold the same donors at each plan
        whether the frames came from the tracker one by one or from the cache a block at once)."""
        for lane, record in zip(self.lanes, records):
            lane.mouths.add(record)

    def _cut_donors(self, per_lane: list[list[FrameRecord]]) -> None:
        from ..media import iter_frames

        from ..face.hands import CoverWatch

        a, b = per_lane[0][0].index, per_lane[0][-1].index + 1
        if self._watches is None:
            self._watches = [CoverWatch() for _ in self.lanes]
        watches = self._watches
        for j, (_, frame) in enumerate(iter_frames(self.info, self.start + a, self.start + b)):
            for lane, records, watch in zip(self.lanes, per_lane, watches):
                if records[j].status == "ok" and lane.mouths.moves_mouths:
                    records[j].covered = watch.covered(frame, records[j].landmarks)
                    records[j].donor = donor_of(records[j], frame, self.pipeline.lsd_size)

    # -- stage 2, on the calling thread: each lane's sections as frames arrive, gathered per frame
    def run(self, tracked, sink) -> None:
        lanes = self.lanes
        slots: dict[int, list] = {}  # frame → what each lane gave for it (None: not yet)
        next_frame = 0
        chunk: list[tuple[int, list]] = []  # frames with an edit, not yet restored
        pending: list[int] = []  # [first, end) of frames no face was edited in, not yet handed to the encoder

        def flush_pass() -> None:
            if pending:
                sink.submit(("pass", *pending), while_waiting=self.report_render)
                pending.clear()

        def flush_chunk() -> None:
            if chunk:
                sink.submit(self._restore(chunk), while_waiting=self.report_render)
                chunk.clear()

        def runs(items: list) -> tuple:
            return tuple(item.run_start if isinstance(item, Edited) else None for item in items)

        def place(lane: FaceLane, item) -> None:
            k = item[1] if isinstance(item, tuple) else item.record.index
            slots.setdefault(k, [None] * len(lanes))[lane.index] = item

        def drain() -> None:
            nonlocal next_frame
            while next_frame in slots and all(x is not None for x in slots[next_frame]):
                items = slots.pop(next_frame)
                self._check_cancel(f"at frame {self.start + next_frame}")
                for lane, item in zip(lanes, items):
                    if isinstance(item, tuple):
                        extend_passthrough(lane.passthrough, item[1], item[2])
                    else:
                        lane.frames_edited += 1
                if all(isinstance(item, tuple) for item in items):  # no face edited here: the frame as decoded
                    flush_chunk()
                    extend_passthrough(self.passthrough, next_frame, items[0][2])
                    if pending and pending[1] - pending[0] >= self.settings.srd_chunk_frames:
                        flush_pass()  # a long stretch without a face is encoded as it goes
                    pending[:] = [pending[0] if pending else next_frame, next_frame + 1]
                else:
                    flush_pass()
                    # Chunks start where a face's stretch starts and run srd_chunk_frames from there (one face: as a
                    # whole-shot plan cuts them), so each face's SRD windows continue across chunks.
                    if chunk and (runs(chunk[0][1]) != runs(items) or next_frame - chunk[0][0] >= self.settings.srd_chunk_frames):
                        flush_chunk()
                    chunk.append((next_frame, items))
                    self.frames_edited += 1
                next_frame += 1
                self.report_render()

        def feed(records: list[FrameRecord]) -> None:
            for lane, record in zip(lanes, records):
                for item in lane.feed(record):
                    place(lane, item)
            drain()

        # A frame's donors are banked DONOR_LOOKAHEAD_FRAMES frames before the lanes see it: a section can take mouths
        # from a little after it, and what a plan sees depends on the frames only, never on how far tracking ran ahead.
        waiting: deque[list[FrameRecord]] = deque()
        for records in tracked:
            self._report("track", records[0].index + 1)
            self._to_mouths(records)
            waiting.append(records)
            if len(waiting) > DONOR_LOOKAHEAD_FRAMES:
                feed(waiting.popleft())
        while waiting:
            feed(waiting.popleft())
        for lane in lanes:
            for item in lane.end():
                place(lane, item)
        drain()
        flush_chunk()
        flush_pass()

    # -- stage 3: SRD on the calling thread, paste-back and encode on the encode thread
    def _restore(self, chunk: list[tuple[int, list]]) -> tuple:
        """The chunk's frames decoded once: each face's donor mouth moved in natively and its crops cut, then each
        face's edited stretches restored (SRD or bicubic), with each face's previous chunk as context."""
        from ..face import lower_face_mask, warp_crop
        from ..media import iter_frames
        from ..mouth.composite import apply_transplant

        t0 = time.perf_counter()
        size = self.pipeline.srd_size
        a, b = chunk[0][0], chunk[-1][0] + 1
        cut: dict[int, list] = {lane.index: [] for lane in self.lanes}  # lane → [(frame, Edited, matrix, moved, crop, source crop)]
        for (k, items), (_, frame) in zip(chunk, iter_frames(self.info, self.start + a, self.start + b)):
            for item in items:
                if not isinstance(item, Edited):
                    continue
                lane = self.lanes[item.lane]
                m = crop_matrix(item.record.matrix, size)
                # The donor's mouth goes into the native frame first; the restore then works on that picture.
                moved = lane.mouths.native(frame, item.record, item.donor, float(item.strength))
                source_crop = warp_crop(frame, m, size)
                crop = source_crop if moved is None else warp_crop(apply_transplant(frame, moved), m, size)
                cut[item.lane].append((k, item, m, moved, crop, source_crop))
        payloads: dict[int, list[LaneEdit]] = {k: [] for k, _ in chunk}
        for lane in self.lanes:
            rows = cut[lane.index]
            for segment in _segments(rows):
                for (k, item, m, moved, crop, source_crop), restored in zip(segment, self._restore_segment(lane, segment, lower_face_mask)):
                    payloads[k].append(LaneEdit(lane.index, restored, crop, source_crop, m,
                                                lower_face_mask(item.record.landmarks, m, size) > 0.5, item.strength,
                                                item.record.landmarks, moved, item.record.covered))
        self.timings["restore_s"] += time.perf_counter() - t0
        return ("edit", a, b, [payloads[k] for k in range(a, b)])

    def _restore_segment(self, lane: FaceLane, segment: list, lower_face_mask) -> np.ndarray:
        """Restore one face's consecutive edited frames of one stretch (``segment`` rows of :meth:`_restore`)."""
        size = self.pipeline.srd_size
        first = segment[0][0]
        crops = np.stack([row[4] for row in segment])
        masks = np.stack([lower_face_mask(row[1].record.landmarks, row[2], size) > 0.5 for row in segment])
        low = np.stack([row[1].low for row in segment])
        tail = lane.srd_tail
        context = tail[2:] if tail is not None and tail[0] == segment[0][1].run_start and tail[1] == first else None
        restored = self.pipeline.restore(crops, masks, low, seed=self.settings.seed, first_frame=self.start + first,
                                         low_source=np.stack([row[1].base for row in segment]), context=context,
                                         mode=self.restore_mode, settings=self.settings, should_cancel=self.should_cancel)
        keep = max(0, self.settings.srd_window_frames - self.settings.srd_window_stride)
        last = segment[-1][0] + 1
        lane.srd_tail = (segment[0][1].run_start, last, restored[len(restored) - keep:], low[len(low) - keep:]) if keep else None
        return restored

    def write(self, item: tuple) -> None:
        """Encode frames ``[a, b)`` in order (the encode thread): passed through as decoded, or with every face's
        change pasted back.

        Each face's change is its new mouth (a donor's, moved in natively) and then the LSD's change on top of it
        (relative to the crop it was restored from); the faces' changes go into the frame together, once. The patch,
        when asked for, gets the edited region alone with the matte as alpha: its colour is the composited frame and
        its alpha the feathered matte, so laid over the untouched original the core of the edit is exact and
        everything else is the original.
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
            frames: list[list[LaneEdit]] = item[3]
            feather = self.settings.feather_px * self.pipeline.srd_size / 224.0
            several = len(self.lanes) > 1
            for k, (_, picture) in enumerate(pictures):
                frame = rgb(picture)
                change, alphas = None, []
                for edit in frames[k]:
                    matte = feathered_matte(edit.mask.astype(np.float32), feather_px=feather) * edit.strength
                    change = add_changes(change, add_changes(
                        transplant_change(frame, edit.moved),
                        paste_change(apply_transplant(frame, edit.moved), edit.restored, edit.crop, edit.matrix, matte)))
                    alpha = cv2.warpAffine(matte, edit.matrix, (self.info.width, self.info.height),
                                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
                    if edit.moved is not None:
                        m = edit.moved
                        box = alpha[m.y0 : m.y0 + m.alpha.shape[0], m.x0 : m.x0 + m.alpha.shape[1]]
                        np.maximum(box, m.alpha, out=box)
                    alphas.append(alpha)
                composited = apply_change(frame, change)
                for edit, alpha in zip(frames[k], alphas):
                    qc = self.lanes[edit.lane].qc
                    qc.add_crop(edit.restored, edit.source_crop, edit.mask, edit.landmarks, edit.matrix, intended=edit.crop, frame=a + k)
                    qc.add_texture(composited, frame, alpha > 0.5)
                    qc.add_frame(composited, landmarks=edit.landmarks if several else None)
                    qc.add_mouth(a + k, composited, edit.landmarks, covered=edit.covered)
                if not native:
                    self.writer.write(composited)
                elif change is None:
                    self.writer.write_picture(picture)
                else:  # the change alone goes into the source's own planes (as the codec stores them): nothing else moves
                    own = NativePicture(self.writer.conform(picture), self.info.color)
                    own.add_change(*change)
                    self.writer.write_picture(own.to_frame())
                if self.patch is not None:
                    self.patch.write(_layer(composited, np.maximum.reduce(alphas) if alphas else None))
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


def _segments(rows: list) -> Iterator[list]:
    """One face's rows of a chunk cut where its frames stop being consecutive or its stretch changes."""
    segment: list = []
    for row in rows:
        if segment and (row[0] != segment[-1][0] + 1 or row[1].run_start != segment[-1][1].run_start):
            yield segment
            segment = []
        segment.append(row)
    if segment:
        yield segment


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


__all__ = ["LaneEdit", "ShotJob", "passthrough_summary", "ramp_strength"]
