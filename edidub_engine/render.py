"""One shot end to end: ShotRequest → decode → track → units → pipeline → paste-back → encoded RenderedClip.

A shot streams, so memory does not follow its length and the GPU does not wait:

1. a track thread decodes and tracks the face, keeping per frame only what is
   small (status, landmarks, the crop transform, the LSD-size crop and mask);
2. the calling thread groups frames into stretches of usable frames and runs
   each LSD section (inversion, then guided sampling) as soon as it is decided
   — the sections are exactly those of the whole-shot plan, the previous
   section's output carried over — then the SRD chunk by chunk (a chunk is
   decoded once to cut its high-resolution crops);
3. an encode thread decodes each chunk again, pastes the restored crops into
   the native frames and writes them, in order.

Frames without a usable face (none found, low confidence, a stretch too short
to edit) are written as decoded and listed with the reason; the edit ramps in
and out over a few frames next to them.  Everything that does not depend on
the dub (the track, in blocks; the original units; each section's inversion)
is kept in the inversion cache, so a second language for the same shot skips
it.  The output is written under a temporary name and published only when
complete; a failure or cancel stops every stage and publishes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .acceleration import Acceleration
from .cache import InversionCache, source_identity
from .config import DubSettings
from .diffusion import Section, next_section, plan_sections
from .errors import (
    CancelledError,
    InvalidArgumentError,
    MediaNotFoundError,
    ModelMissingError,
    NoFaceError,
    OutputExistsError,
    RangeOutsideMediaError,
)
from .pipeline import to_crops
from .qc import ShotQC
from .shot import OUTPUT_EXTENSIONS, SEQUENCE_CODECS, PassthroughRange, RenderedClip, ShotRequest
from .timebase import timecode_to_frame

log = logging.getLogger("edidub.render")

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]


# ----------------------------------------------------------------------------- models
@dataclass
class LoadedModels:
    """A bundle with its networks, codebook and speech frontend loaded (kept by a worker between jobs)."""

    info: Any  # models.bundle.BundleInfo
    lsd: torch.nn.Module
    srd: torch.nn.Module
    encoder: Any  # audio.UnitEncoder
    identity: dict[str, Any]

    @classmethod
    def load(cls, models: str | Path | None = None, *, hubert_dir: str | Path | None = None) -> "LoadedModels":
        from .audio import Codebook, UnitEncoder, frontend_for_codebook
        from .models import load_model
        from .models.bundle import read_bundle, resolve_bundle

        info = read_bundle(resolve_bundle(models))
        lsd = load_model(info.lsd_dir).float()
        srd = load_model(info.srd_dir).float()
        if lsd.null_unit is None or srd.null_unit is not None:
            raise InvalidArgumentError(f"model bundle {info.path}: lsd/ must hold the lip-sync model and srd/ the super-resolution model")
        codebook = Codebook.load(info.codebook_path)
        if codebook.null_unit != lsd.null_unit:
            raise InvalidArgumentError(
                f"model bundle {info.path}: the codebook has {codebook.clusters} clusters but the LSD was trained with {lsd.null_unit}",
                hint="a bundle's codebook must be the one its LSD was trained with",
            )
        encoder = UnitEncoder(frontend_for_codebook(codebook, hubert_dir=hubert_dir), codebook)
        digest = hashlib.sha256()
        for part in (info.lsd_dir / "diffusion_pytorch_model.safetensors", info.srd_dir / "diffusion_pytorch_model.safetensors", info.codebook_path):
            digest.update(part.read_bytes())
        identity = {**info.describe(), "sha256": digest.hexdigest()}
        return cls(info=info, lsd=lsd, srd=srd, encoder=encoder, identity=identity)

    def to(self, device: str | torch.device) -> "LoadedModels":
        """Move the networks to ``device`` (e.g. ``cuda:0``); a missing GPU is a clear error."""
        device = torch.device(device)
        if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
            raise InvalidArgumentError(f"device {device} is not available on this machine",
                                       hint="run `edidub doctor` to list the GPUs, or use --device cpu")
        self.lsd.to(device)
        self.srd.to(device)
        return self


SRD_MARGIN_DB = 0.05
"""How much an SRD must beat bicubic upsampling by to run: one that only ties it costs time and adds nothing (a residual
SRD with random weights lands within a hundredth of a dB of bicubic)."""


def srd_beats_bicubic(srd_db: float, bicubic_db: float) -> bool:
    return srd_db >= bicubic_db + SRD_MARGIN_DB


def srd_verdict(card: dict[str, Any]) -> dict[str, Any]:
    """Whether a bundle's SRD should run, from the figures ``edidub check`` wrote into its model card.

    ``runs_srd`` is False when the SRD did not beat bicubic upsampling (by :data:`SRD_MARGIN_DB`) inside
    the mask on clips it never saw, or did but the whole render with it did not beat the one without
    (then the LSD output is upsampled onto the source's own detail instead); True when it won both;
    None when the bundle was never checked (the SRD runs, as trained).
    """
    check = (card or {}).get("check") or {}
    srd = check.get("srd") or {}
    if "srd_db" not in srd or "bicubic_db" not in srd:
        return {"runs_srd": None, "reason": "the bundle's SRD is unchecked (run `edidub check`)"}
    wins = srd_beats_bicubic(float(srd["srd_db"]), float(srd["bicubic_db"]))
    figures = f"SRD {float(srd['srd_db']):.1f} dB vs bicubic {float(srd['bicubic_db']):.1f} dB inside the mask"
    whole = check.get("end_to_end") or {}
    if wins and whole.get("restore") == "bicubic" and "with_srd_db" in whole:
        return {"runs_srd": False, "reason": (f"the bundle's SRD beats bicubic upsampling ({figures}) but not the whole render "
                                              f"(end to end {whole['with_srd_db']:.2f} dB against {whole['with_bicubic_db']:.2f} dB), "
                                              "so it is not worth its time; the LSD output is upsampled onto the source's own "
                                              "detail instead (--restore srd forces the SRD)")}
    if wins:
        return {"runs_srd": True, "reason": f"the bundle's SRD beats bicubic upsampling ({figures})"}
    return {"runs_srd": False, "reason": (f"the bundle's SRD does not beat bicubic upsampling by {SRD_MARGIN_DB} dB ({figures}); the LSD output is "
                                          "upsampled onto the source's own detail instead (--restore srd forces the SRD)")}


# ----------------------------------------------------------------------------- the track
TRACK_BLOCK_FRAMES = 256  # frames per cached track block


@dataclass(slots=True)
class FrameRecord:
    """What tracking keeps of one frame (index 0 = the shot's first frame): small, so a stream of them is cheap."""

    index: int
    status: str  # "ok" or why the frame passes through
    cut: bool  # starts a new camera shot
    matrix: np.ndarray | None = None  # [2, 3] frame → 224 crop
    landmarks: np.ndarray | None = None  # [478, 3] float32 frame pixels
    crop: np.ndarray | None = None  # [s, s, 3] uint8 at the LSD size
    mask: np.ndarray | None = None  # [s, s] uint8 at the LSD size


def iter_track(info, start: int, end: int, *, selector, lsd_size: int, first: int = 0) -> Iterator[FrameRecord]:
    """Track shot frames ``[first, end - start)`` of ``[start, end)`` as a stream of :class:`FrameRecord`."""
    from .analysis import CutDetector
    from .face import FaceStatus, FaceTracker, lower_face_mask, track_and_align, warp_crop
    from .media import iter_frames

    detector = CutDetector()
    cuts: set[int] = set()
    seen = first

    def cut_hook(frame: np.ndarray) -> bool:
        nonlocal seen
        cut = detector.is_cut(frame)
        if cut:
            cuts.add(seen)
        seen += 1
        return cut

    with FaceTracker(selector=selector) as tracker:
        for tracked in track_and_align(iter_frames(info, start + first, end), tracker=tracker, is_cut=cut_hook):
            i = tracked.frame_index - start
            obs = tracked.observation
            if tracked.alignment.valid and obs.status is FaceStatus.OK:
                small = tracked.alignment.matrix_for(lsd_size)
                yield FrameRecord(i, "ok", i in cuts, tracked.alignment.matrix_for(224), obs.landmarks.astype(np.float32),
                                  warp_crop(tracked.frame, small, lsd_size),
                                  (lower_face_mask(obs.landmarks, small, lsd_size) > 0.5).astype(np.uint8))
            else:
                yield FrameRecord(i, obs.status.value if obs.status is not FaceStatus.OK else "low_confidence", i in cuts)
            cuts.discard(i)


def _block_entry(records: list[FrameRecord], lsd_size: int) -> dict[str, Any]:
    """A run of records as a cache entry (tensors and plain data only)."""
    k = len(records)
    matrices = np.full((k, 2, 3), np.nan)
    landmarks = np.full((k, 478, 3), np.nan, np.float32)
    crops = np.zeros((k, lsd_size, lsd_size, 3), np.uint8)
    masks = np.zeros((k, lsd_size, lsd_size), np.uint8)
    for j, r in enumerate(records):
        if r.status == "ok":
            matrices[j], landmarks[j], crops[j], masks[j] = r.matrix, r.landmarks, r.crop, r.mask
    return {"first": records[0].index, "status": [r.status for r in records], "cuts": [r.cut for r in records],
            "matrices": torch.from_numpy(matrices), "landmarks": torch.from_numpy(landmarks),
            "crops": torch.from_numpy(crops), "masks": torch.from_numpy(masks)}


def _block_records(entry: dict[str, Any]) -> Iterator[FrameRecord]:
    matrices, landmarks = entry["matrices"].numpy(), entry["landmarks"].numpy()
    crops, masks = entry["crops"].numpy(), entry["masks"].numpy()
    for j, (status, cut) in enumerate(zip(entry["status"], entry["cuts"])):
        i = entry["first"] + j
        if status == "ok":
            yield FrameRecord(i, status, cut, matrices[j], landmarks[j], crops[j], masks[j])
        else:
            yield FrameRecord(i, status, cut)


@dataclass
class ShotTrack:
    """A whole shot's track in arrays (for measuring short clips; dubbing streams :class:`FrameRecord`s)."""

    status: list[str]  # "ok" or why the frame passes through
    matrices: np.ndarray  # [N, 2, 3] frame → 224 crop (NaN where no face)
    landmarks: np.ndarray  # [N, 478, 3] float32 frame pixels (NaN where no face)
    crops: np.ndarray  # [N, s, s, 3] uint8 at the LSD size
    masks: np.ndarray  # [N, s, s] uint8 at the LSD size
    cuts: list[int] = field(default_factory=list)  # shot-relative frames that start a new camera shot


def track_shot(info, start: int, end: int, *, selector, lsd_size: int, progress: Progress | None, should_cancel: ShouldCancel | None) -> ShotTrack:
    records = []
    for record in iter_track(info, start, end, selector=selector, lsd_size=lsd_size):
        if should_cancel is not None and should_cancel():
            raise CancelledError(f"cancelled while tracking frame {start + record.index}")
        records.append(record)
        if progress is not None:
            progress("track", record.index + 1, end - start)
    entry = _block_entry(records, lsd_size)
    return ShotTrack(entry["status"], entry["matrices"].numpy(), entry["landmarks"].numpy(), entry["crops"].numpy(),
                     entry["masks"].numpy(), [r.index for r in records if r.cut])


def _extend(passthrough: list[PassthroughRange], k: int, reason: str) -> None:
    """Add frame ``k`` (in order) to the passed-through ranges, merging with the last one when they touch."""
    if reason == "ok":
        return
    if passthrough and passthrough[-1].end_frame == k and passthrough[-1].reason == reason:
        last = passthrough.pop()
        passthrough.append(PassthroughRange(last.start_frame, k + 1, reason))
    else:
        passthrough.append(PassthroughRange(k, k + 1, reason))


def _strength(i: int, frames: int, *, ramp_in: bool, left: int | None) -> np.float32:
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
    ready: deque = field(default_factory=deque)  # (run frame, record, LSD crop) awaiting their strength


@dataclass(slots=True)
class _Edited:
    record: FrameRecord
    low: np.ndarray  # the LSD output crop
    run_start: int
    strength: np.float32


# ----------------------------------------------------------------------------- the renderer
class ShotRenderer:
    """Dubs shots with one loaded bundle (a daemon worker keeps one of these)."""

    def __init__(self, models: LoadedModels, *, settings: DubSettings | None = None, cache: InversionCache | None = None,
                 acceleration: Acceleration | None = None):
        from .heap import return_large_blocks
        from .pipeline import DubbingPipeline

        return_large_blocks()  # memory that follows the shot in flight, not every stage's high-water mark
        self.models = models
        defaults = settings or DubSettings().with_overrides(**models.info.dub_defaults())
        self.pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=defaults, acceleration=acceleration)
        self.cache = cache
        self.srd_verdict = srd_verdict(models.info.card)
        if self.srd_verdict["runs_srd"] is False and defaults.restore == "auto":
            log.warning("%s: %s", models.info.name, self.srd_verdict["reason"])

    def restore_mode(self, settings: DubSettings) -> str:
        """``"srd"`` or ``"bicubic"``: the user's choice, or on ``auto`` what the bundle's check measured."""
        if settings.restore != "auto":
            return settings.restore
        return "bicubic" if self.srd_verdict["runs_srd"] is False else "srd"

    def dub_shot(self, request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None,
                 output_path: str | Path | None = None, version_up: bool = False) -> RenderedClip:
        """Render one shot to a new file (never over an existing one).

        ``version_up``: where the derived output name is taken, write the next free
        ``_v002``, ``_v003``… beside it, as post houses version renders (an explicit
        ``output_path`` or ``output.name`` that exists is still refused).
        """
        from .background import Prefetch, Sink
        from .face import FaceSelector
        from .media import ClipWriter, Codec, planar_format, probe_video
        from .media.decode import source_hdr
        from .media.probe import ColorTags

        t0 = time.perf_counter()
        shot = f"shot {request.shot_id!r}"
        info = probe_video(request.source.path)
        if request.source.rate is not None:  # an image sequence that declares no rate runs at the request's
            from .media.sequence import with_rate

            info = with_rate(info, request.source.rate)
        start, end = request.source.start_frame, request.source.end_frame
        if end > info.frame_count:
            raise RangeOutsideMediaError(
                f"{shot}: frames [{start}, {end}) run past the end of {info.path.name}, which has {info.frame_count} frames",
                hint=f"end the range at {info.frame_count} or earlier",
            )
        if request.source.rate is not None and request.source.rate != info.rate:
            raise InvalidArgumentError(
                f"{shot}: the request says {request.source.rate} fps but {info.path.name} runs at {info.rate} fps",
                hint="send frames counted at the media's own rate",
            )
        out = self._output_path(request, info, output_path, version_up=version_up)
        settings = self.pipeline.settings.with_overrides(
            steps=request.options.steps, inversion_steps=request.options.inversion_steps,
            guidance_scale=request.options.guidance_scale, seed=request.options.seed,
        )
        selector = FaceSelector.parse(str(request.options.face))
        n = end - start
        dub16, dub48, dub_end_s = self._dub_audio(request, info.rate, n)
        dub = self._units(dub16, info.rate, n, dub_end_s=dub_end_s)
        del dub16

        key = InversionCache.key(source=source_identity(info.path), start=start, end=end, model=self.models.identity["sha256"],
                                 face=str(selector), lsd_size=self.pipeline.lsd_size, precision=self.pipeline.acceleration.precision,
                                 settings={k: getattr(settings, k) for k in ("inversion_steps", "window_frames", "window_stride", "section_frames", "carry_frames", "min_run_frames")})
        manifest = self.cache.get(key) if self.cache is not None else None
        cache_hit = manifest is not None
        original_units = manifest["original_units"].numpy() if cache_hit else self._units(self._source_audio(info, start, end), info.rate, n).shot

        job = _Job(self, info, start, n, settings, key, original_units, dub.shot, progress, should_cancel)
        patch_path = out.with_name(out.stem + "_patch.mov") if request.output.patch else None
        if patch_path is not None and patch_path.exists():
            raise OutputExistsError(f"{shot}: {patch_path} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        # The source's own pixel format where it has a planar layout (every common camera and mezzanine format):
        # outside the matte the output is the source sample for sample. Else (palette, grey) through 8-bit RGB.
        job.native = planar_format(info.pix_fmt or "") is not None
        with contextlib.ExitStack() as stack:
            hdr = source_hdr(info, start)
            writer = stack.enter_context(self._writer(request, info, out, start, audio=dub48 if request.output.audio else None,
                                                      native=job.native, hdr=hdr))
            if patch_path is not None:
                # the patch holds the composited RGB the networks saw: a linear plate's through its view transform (sRGB)
                patch_color = info.color if "f32" not in (info.pix_fmt or "") else ColorTags(primaries=info.color.primaries, transfer=13)
                job.patch = stack.enter_context(ClipWriter(patch_path, width=info.width, height=info.height, rate=info.rate,
                                                           codec=Codec.PRORES_4444, timecode=info.timecode_at(start), color=patch_color,
                                                           hdr=hdr))
            job.writer = writer
            # Stages on their own threads, stopped (LIFO) before the writers abort on an error.
            stack.callback(job.qc.close)
            sink = Sink(job.write, depth=2, name=f"edidub-encode-{request.shot_id}")
            stack.callback(sink.close)
            tracked = Prefetch(job.records(selector, cache_hit), depth=2 * TRACK_BLOCK_FRAMES, name=f"edidub-track-{request.shot_id}")
            stack.callback(tracked.close)
            job.run(tracked, sink)
            # The encoder thread writes the last chunks after the loop: its count goes out from here (progress
            # callbacks run on this thread only), instead of a render bar at 0 that jumps to done.
            sink.finish(while_waiting=job.report_render)
            job.finish_progress()
            if job.frames_edited == 0:  # the writers abort: nothing is published
                raise NoFaceError(
                    f"{shot}: no usable face in {info.path.name} frames {start}-{end - 1} ({_summary(job.passthrough)})",
                    hint="check the range and --face; faces smaller than about 20 px, in profile or covered cannot be dubbed",
                    details={"passthrough": [r.__dict__ for r in job.passthrough]},
                )
            path = writer.close()
            if job.patch is not None:
                job.patch.close()
        if self.cache is not None and not cache_hit:
            self.cache.put(key, {"original_units": torch.from_numpy(original_units), "frames": n})
        timings = {**job.timings, "total_s": time.perf_counter() - t0}
        return RenderedClip(
            shot_id=request.shot_id, path=str(path), start_frame=0, end_frame=n, rate=info.rate,
            timecode=info.timecode_at(start), frames_edited=job.frames_edited, frames_passed_through=tuple(job.passthrough),
            qc={"dub_padded_frames": int(dub.padded_frames), "dub_cut_s": float(dub.cut_s), "cache_hit": cache_hit,
                "timings": {k: round(v, 3) for k, v in timings.items()}, "settings": settings.to_dict(),
                "acceleration": self.pipeline.acceleration.to_dict(), "fast_path": self.pipeline.fast_path.to_dict(),
                "quality": job.qc.result(),
                "restore": {"mode": job.restore_mode, "why": (f"--restore {settings.restore}" if settings.restore != "auto"
                                                              else self.srd_verdict["reason"])},
                "source": {"path": str(info.path), "start_frame": start, "end_frame": end}},
            model=dict(self.models.identity), record=dict(request.record),
            patch_path=None if patch_path is None else str(patch_path),
        )

    # -- pieces --------------------------------------------------------------------------
    @staticmethod
    def _writer(request: ShotRequest, info, out: Path, start: int, *, audio, native: bool, hdr=None):
        """The shot's writer: a video file (ClipWriter), or for ``exr``/``dpx`` a folder of numbered frames whose
        numbers are the plate's own (a video source: its timecode's frame count), with each plate frame's header."""
        from .media import ClipWriter, Codec
        from .media.sequence import SequenceWriter, plate_header

        shot = f"shot {request.shot_id!r}"
        codec = request.output.codec
        source_format = info.pix_fmt if native else None
        if codec not in SEQUENCE_CODECS:
            if info.sequence is not None and "f32" in (info.pix_fmt or ""):
                raise InvalidArgumentError(f"{shot}: {info.path.name} is a scene-linear EXR plate; it is written back as EXR",
                                           hint="use --codec exr (the frames keep the plate's numbers and headers)")
            return ClipWriter(out, width=info.width, height=info.height, rate=info.rate, codec=Codec(codec),
                              timecode=info.timecode_at(start), audio=audio, audio_sample_rate_hz=48000, color=info.color,
                              source_format=source_format, hdr=hdr)
        plate = info.sequence
        first = plate.first + start if plate is not None else timecode_to_frame(info.timecode_at(start), info.rate)
        header = plate_header(plate, start) if plate is not None and plate.kind == codec else None
        try:
            return SequenceWriter(out, kind=codec, width=info.width, height=info.height, rate=info.rate,
                                  source_format=source_format, color=info.color, timecode=info.timecode_at(start),
                                  first_number=first, header=header, audio=audio, audio_sample_rate_hz=48000)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{shot}: {exc.message}", hint=exc.hint) from None

    def _output_path(self, request: ShotRequest, info, explicit: str | Path | None, *, version_up: bool = False) -> Path:
        ext = OUTPUT_EXTENSIONS[request.output.codec]
        if explicit is not None:
            out = Path(explicit).expanduser()
            if ext == "" and out.suffix.lower() in (".exr", ".dpx"):
                raise InvalidArgumentError(f"shot {request.shot_id!r}: {request.output.codec} frames are written into a new folder; "
                                           f"{out.name} names a file", hint=f"name the folder, e.g. {out.with_suffix('')}")
            if ext and out.suffix.lower() != ext:
                raise InvalidArgumentError(f"shot {request.shot_id!r}: {out.name} must end in {ext} for {request.output.codec}",
                                           hint=f"name it {out.stem}{ext}, or choose the codec that writes {out.suffix}")
        else:
            folder = Path(request.output.dir or ".").expanduser()
            from .media.sequence import stem

            name = request.output.name or f"{stem(info)}_{request.shot_id}_dub"
            out = folder / (name if name.endswith(ext) else name + ext)
            if version_up and request.output.name is None:
                out = next_version(out)
        if out.exists():
            raise OutputExistsError(f"shot {request.shot_id!r}: {out} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        if not out.parent.is_dir():
            raise InvalidArgumentError(f"shot {request.shot_id!r}: output folder {out.parent} does not exist", hint="create it first")
        return out

    def _dub_audio(self, request: ShotRequest, rate: Fraction, n: int) -> tuple[np.ndarray, Any, float]:
        """The dub speech laid out on the shot's clock: 16 kHz samples (for the units), a 48 kHz reader (the
        output's sound, decoded a block at a time as frames are written) and where the speech ends."""
        from .media import load_audio
        from .media.mix import AudioMix, MixPiece

        shot_s = Fraction(n) / rate
        pieces, parts = [], []
        for seg in request.dub_audio:
            if not Path(seg.path).is_file():
                raise MediaNotFoundError(f"shot {request.shot_id!r}: dub audio {seg.path} does not exist",
                                         hint="check the path of the dub line (and that its drive is mounted)")
            a16 = load_audio(seg.path, start_s=seg.start_s, duration_s=seg.duration_s, sample_rate_hz=16000)
            parts.append((seg, a16))
            pieces.append(MixPiece(Path(seg.path), Fraction(seg.start_s).limit_denominator(10**9),
                                   Fraction(seg.offset_s).limit_denominator(10**9), Fraction(len(a16), 16000)))
        dub_end_s = max(seg.offset_s + len(a16) / 16000 for seg, a16 in parts)
        out16 = np.zeros(int(round(max(float(shot_s), dub_end_s) * 16000)), np.float32)
        for seg, a16 in parts:
            at = int(round(seg.offset_s * 16000))
            stop = min(len(out16), at + len(a16))
            out16[at:stop] += a16[: stop - at]
        return out16, AudioMix(pieces, length_s=shot_s, sample_rate_hz=48000), dub_end_s

    def _source_audio(self, info, start: int, end: int) -> np.ndarray:
        from .media import load_audio_for_frames

        if not info.has_audio:  # a silent source: inversion runs with the null unit throughout
            return np.zeros(int(round(float(Fraction(end - start) / info.rate) * 16000)), np.float32)
        return load_audio_for_frames(info, start, end)

    def _units(self, audio: np.ndarray, rate: Fraction, n: int, *, dub_end_s: float | None = None):
        from .audio import units_for_shot

        units = units_for_shot(self.models.encoder, audio, rate=rate, start_frame=0, end_frame=n, dub_end_s=dub_end_s, context_frames=0)
        if not np.isfinite(units.units).all():  # pragma: no cover - defensive
            raise InvalidArgumentError("speech units came out invalid")
        return units

    @staticmethod
    def _matrix(matrix224: np.ndarray, size: int) -> np.ndarray:
        from .face.alignment import FaceAlignment

        return FaceAlignment(frame_index=0, valid=True, matrix=matrix224).matrix_for(size)


class _Job:
    """One shot in flight: tracked frames stream in, sections are lip-synced as soon as they are decided, and
    restored chunks go to the encode thread in frame order. Holds O(section) data, never the whole shot."""

    def __init__(self, renderer: ShotRenderer, info, start: int, n: int, settings: DubSettings, key: str,
                 original_units: np.ndarray, dub_units: np.ndarray, progress: Progress | None, should_cancel: ShouldCancel | None):
        self.pipeline, self.cache = renderer.pipeline, renderer.cache
        self.info, self.start, self.n, self.settings, self.key = info, start, n, settings, key
        self.original_units, self.dub_units = original_units, dub_units
        self.progress, self.should_cancel = progress, should_cancel
        self.writer = self.patch = None
        self.native = False  # the writer takes the source's own pictures (``write_picture``), not RGB
        self.restore_mode = renderer.restore_mode(settings)
        self.qc = ShotQC()
        self.srd_tail: tuple | None = None  # (run start, end frame, restored crops, LSD crops) the next chunk continues
        self.passthrough: list[PassthroughRange] = []
        self.frames_edited = 0
        self.written = 0
        self.timings = {"track_s": 0.0, "lip_sync_s": 0.0, "restore_s": 0.0, "encode_s": 0.0}
        sections = len(plan_sections(n, section_frames=settings.section_frames, carry_frames=settings.carry_frames,
                                     min_frames=settings.window_frames))  # an estimate: passed-through frames need none
        self.steps_total = sections * (settings.steps + settings.inversion_steps)
        self.steps_done = 0

    # -- stage 1, on the track thread: records from the cache, else from the tracker (and into the cache)
    def records(self, selector, cache_hit: bool) -> Iterator[FrameRecord]:
        t0 = time.perf_counter()
        first = 0
        if cache_hit:
            while first < self.n:
                entry = self.cache.get(f"{self.key}-track-{first}")
                if entry is None:  # evicted or damaged: track the rest afresh
                    break
                records = list(_block_records(entry))
                self.timings["track_s"] += time.perf_counter() - t0
                yield from records
                t0 = time.perf_counter()
                first += len(records)
        block: list[FrameRecord] = []
        for record in iter_track(self.info, self.start, self.start + self.n, selector=selector,
                                 lsd_size=self.pipeline.lsd_size, first=first) if first < self.n else ():
            if self.cache is not None:
                block.append(record)
                if len(block) == TRACK_BLOCK_FRAMES or record.index == self.n - 1:
                    self.cache.put(f"{self.key}-track-{block[0].index}", _block_entry(block, self.pipeline.lsd_size))
                    block = []
            self.timings["track_s"] += time.perf_counter() - t0
            yield record
            t0 = time.perf_counter()

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
            name = f"{self.key}-lsd-{run.start}-{section.start}-{section.end}"
            cached = self.cache.get(name) if self.cache is not None else None
            if cached is not None:  # a cached inversion: those steps are not run, so the bar must not wait for them
                self.steps_total = max(self.steps_done, self.steps_total - settings.inversion_steps)
            t0 = time.perf_counter()
            done = self.steps_done

            def report(steps: int, _total: int) -> None:
                self.steps_done = done + steps
                self.steps_total = max(self.steps_total, self.steps_done)
                self._report("lip-sync", self.steps_done, self.steps_total)

            output, latent = self.pipeline.lip_sync_section(
                np.stack([r.crop for r in records]), np.stack([r.mask for r in records]),
                self.original_units[a:b], self.dub_units[a:b], section=section, carried=carried,
                latent=None if cached is None else cached["latent"], settings=settings, progress=report,
                should_cancel=self.should_cancel,
            )
            self.timings["lip_sync_s"] += time.perf_counter() - t0
            if self.cache is not None and cached is None:
                self.cache.put(name, {"latent": latent.detach().cpu()})
            crops = to_crops(output)
            for j in range(section.carry, section.frames):
                run.ready.append((section.start + j, records[j], crops[j]))
            keep = min(section.frames, max(settings.carry_frames, settings.window_frames))
            run.tail, run.tail_start = output[:, :, -keep:], section.end - keep
            run.previous = section
            drop = run.tail_start - run.base  # records the next section cannot reach back to
            if drop > 0:
                del run.records[:drop]
                run.base += drop
            yield from self._ready(run, ended=False)

    def _ready(self, run: _Run, *, ended: bool) -> Iterator[_Edited]:
        """Edited frames whose cross-fade strength is known: the run has ended, or enough frames follow them."""
        fade = self.settings.crossfade_frames
        ramp_out = ended and run.start + run.count < self.n
        while run.ready and (ended or run.count > run.ready[0][0] + fade):
            i, record, low = run.ready.popleft()
            left = run.count - 1 - i if ramp_out else None
            yield _Edited(record, low, run.start, _strength(i, fade, ramp_in=run.start > 0, left=left))

    # -- stage 3: SRD on the calling thread, paste-back and encode on the encode thread
    def _restore(self, chunk: list[_Edited]) -> tuple:
        from .face import lower_face_mask, warp_crop
        from .media import iter_frames

        t0 = time.perf_counter()
        size = self.pipeline.srd_size
        a, b = chunk[0].record.index, chunk[-1].record.index + 1
        matrices = [ShotRenderer._matrix(e.record.matrix, size) for e in chunk]
        crops = np.stack([warp_crop(frame, m, size) for (_, frame), m in zip(iter_frames(self.info, self.start + a, self.start + b), matrices)])
        masks = np.stack([lower_face_mask(e.record.landmarks, m, size) > 0.5 for e, m in zip(chunk, matrices)])
        low = np.stack([e.low for e in chunk])
        tail = self.srd_tail
        context = tail[2:] if tail is not None and tail[0] == chunk[0].run_start and tail[1] == a else None
        restored = self.pipeline.restore(crops, masks, low, seed=self.settings.seed, first_frame=self.start + a,
                                         low_source=np.stack([e.record.crop for e in chunk]), context=context,
                                         mode=self.restore_mode, settings=self.settings, should_cancel=self.should_cancel)
        keep = max(0, self.settings.srd_window_frames - self.settings.srd_window_stride)
        self.srd_tail = (chunk[0].run_start, b, restored[len(restored) - keep:], low[len(low) - keep:]) if keep else None
        self.timings["restore_s"] += time.perf_counter() - t0
        return ("edit", a, b, restored, crops, matrices, masks, [e.strength for e in chunk], [e.record.landmarks for e in chunk])

    def write(self, item: tuple) -> None:
        """Encode frames ``[a, b)`` in order (the encode thread): passed through as decoded, or pasted back.

        The patch, when asked for, gets the edited region alone with the matte as alpha: its
        colour is the composited frame and its alpha the feathered matte, so laid over the
        untouched original the core of the edit is exact and everything else is the original.
        """
        import cv2

        from .face import apply_change, feathered_matte, paste_change
        from .media import NativePicture, iter_pictures, to_rgb

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
            restored, crops, matrices, masks, strength, landmarks = item[3:]
            feather = self.settings.feather_px * self.pipeline.srd_size / 224.0
            for k, (_, picture) in enumerate(pictures):
                frame = rgb(picture)
                matte = feathered_matte(masks[k].astype(np.float32), feather_px=feather) * strength[k]
                change = paste_change(frame, restored[k], crops[k], matrices[k], matte)
                composited = apply_change(frame, change)
                alpha = cv2.warpAffine(matte, matrices[k], (self.info.width, self.info.height),
                                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
                self.qc.add_crop(restored[k], crops[k], masks[k], landmarks[k], matrices[k])
                self.qc.add_texture(composited, frame, alpha > 0.5)
                self.qc.add_frame(composited)
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


def _summary(passthrough: list[PassthroughRange]) -> str:
    counts: dict[str, int] = {}
    for r in passthrough:
        counts[r.reason] = counts.get(r.reason, 0) + r.end_frame - r.start_frame
    return ", ".join(f"{v} frame(s) {k.replace('_', ' ')}" for k, v in counts.items()) or "no frames"


# ----------------------------------------------------------------------------- the daemon's runner
_renderer: ShotRenderer | None = None


def next_version(path: Path, *, limit: int = 999) -> Path:
    """``path`` if it is free, else the first free ``<stem>_v002<ext>`` … ``_v999``."""
    if not path.exists():
        return path
    for n in range(2, limit + 1):
        candidate = path.with_name(f"{path.stem}_v{n:03d}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise OutputExistsError(f"{path} and its versions up to _v{limit:03d} already exist; EdiDub never overwrites media",
                            hint="move older versions away or name the output with -o")


def dub_shot(request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> RenderedClip:
    """Dub one shot on the CPU with the default bundle, loaded once per process and kept."""
    global _renderer
    if _renderer is None:
        _renderer = ShotRenderer(LoadedModels.load(), cache=InversionCache())
    return _renderer.dub_shot(request, progress=progress, should_cancel=should_cancel)


class ModelRunner:
    """A daemon worker's runner: every servable bundle by name, each loaded on its device at first use and kept.

    ``options.model`` of a request picks the bundle (``None``: ``default``); the default is
    loaded at start, so a broken default stops the worker before it takes a job.
    """

    def __init__(self, device: str, bundles: dict[str, Path], *, default: str, hubert_dir: str | Path | None = None,
                 acceleration: Acceleration | None = None):
        if default not in bundles:
            raise ModelMissingError(f"default model bundle {default!r} is not among the bundles found ({', '.join(sorted(bundles)) or 'none'})",
                                    hint="pass --models DIR with that bundle, or --default-model with one of those names")
        self.device, self.bundles, self.default, self.hubert_dir = device, dict(bundles), default, hubert_dir
        self.acceleration = acceleration
        self._renderers: dict[str, ShotRenderer] = {}
        self._renderer(default)

    def _renderer(self, name: str) -> ShotRenderer:
        if name not in self._renderers:
            models = LoadedModels.load(self.bundles[name], hubert_dir=self.hubert_dir).to(self.device)
            self._renderers[name] = ShotRenderer(models, cache=InversionCache(), acceleration=self.acceleration)
        return self._renderers[name]

    def __call__(self, request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> RenderedClip:
        name = request.options.model or self.default
        if name not in self.bundles:
            raise ModelMissingError(f"shot {request.shot_id!r}: model bundle {name!r} is not served here",
                                    hint=f"choose one of {', '.join(sorted(self.bundles))}")
        return self._renderer(name).dub_shot(request, progress=progress, should_cancel=should_cancel)

    def describe_models(self) -> list[dict[str, Any]]:
        """Each bundle for ``hello``/``models``: name, path, version, its card's description, which is the default."""
        from .models.bundle import read_bundle

        out = []
        for name, path in sorted(self.bundles.items(), key=lambda kv: (kv[0] != self.default, kv[0])):
            info = read_bundle(path)
            loaded = self._renderers.get(name)
            out.append({"name": name, "present": True, "path": str(path), "version": info.version,
                        "sha256": loaded.models.identity["sha256"] if loaded else None,
                        "details": {"default": name == self.default, "frontend": info.frontend,
                                    "description": info.card.get("description", ""), "check": info.card.get("check", {}).get("end_to_end")}})
        return out


def runner_for_device(device: str) -> ModelRunner:
    """The daemon's default runner factory: a :class:`ModelRunner` per device.

    ``edidub serve`` passes its choices through the environment: ``EDIDUB_MODEL_DIRS``
    (``--models``, joined with ``os.pathsep``), ``EDIDUB_DEFAULT_MODEL``, ``EDIDUB_HUBERT``,
    and ``EDIDUB_PRECISION``/``EDIDUB_COMPILE`` over the device's fast path.
    """
    import os

    from .models.bundle import DEFAULT_BUNDLE, find_bundles

    folders = [f for f in os.environ.get("EDIDUB_MODEL_DIRS", "").split(os.pathsep) if f]
    adapted = os.environ.get("EDIDUB_ADAPTED_DIR")
    if adapted and Path(adapted).is_dir():  # bundles earlier adapt jobs made
        folders.append(adapted)
    acceleration = Acceleration.parse(os.environ.get("EDIDUB_PRECISION") or None, os.environ.get("EDIDUB_COMPILE") or None, device)
    return ModelRunner(device, find_bundles(folders), default=os.environ.get("EDIDUB_DEFAULT_MODEL") or DEFAULT_BUNDLE,
                       hubert_dir=os.environ.get("EDIDUB_HUBERT") or None, acceleration=acceleration)


__all__ = ["FrameRecord", "LoadedModels", "ModelRunner", "ShotRenderer", "ShotTrack", "dub_shot", "iter_track", "runner_for_device", "track_shot"]
