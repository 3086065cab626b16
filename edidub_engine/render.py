"""One shot end to end: ShotRequest → decode → track → units → pipeline → paste-back → encoded RenderedClip.

The order of work is chosen so memory does not follow the shot's length:

1. one streaming pass tracks the face and keeps, per frame, only what is small:
   status, landmarks, the crop transform, the LSD-size crop and mask;
2. the LSD stage runs per stretch of usable frames on those small crops;
3. the SRD stage, paste-back and encoding go chunk by chunk: a chunk is decoded
   once to cut its high-resolution crops, restored, then decoded again and
   pasted into the native frames as they are written.

Frames without a usable face (none found, low confidence, a stretch too short
to edit) are written as decoded and listed with the reason; the edit ramps in
and out over a few frames next to them.  Everything that does not depend on
the dub (the track, the original units, the inversions) is kept in the
inversion cache, so a second language for the same shot skips it.  The output
is written under a temporary name and published only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .cache import InversionCache, source_identity
from .config import DubSettings
from .errors import (
    CancelledError,
    InvalidArgumentError,
    MediaNotFoundError,
    NoFaceError,
    OutputExistsError,
    RangeOutsideMediaError,
)
from .shot import OUTPUT_EXTENSIONS, PassthroughRange, RenderedClip, ShotRequest

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


# ----------------------------------------------------------------------------- the track
@dataclass
class ShotTrack:
    """Pass-1 results for a shot's frames (index 0 = the shot's first frame). Small per frame."""

    status: list[str]  # "ok" or why the frame passes through
    matrices: np.ndarray  # [N, 2, 3] frame → 224 crop (NaN where no face)
    landmarks: np.ndarray  # [N, 478, 3] float32 frame pixels (NaN where no face)
    crops: np.ndarray  # [N, s, s, 3] uint8 at the LSD size
    masks: np.ndarray  # [N, s, s] uint8 at the LSD size
    cuts: list[int] = field(default_factory=list)  # shot-relative frames that start a new camera shot

    def to_entry(self) -> dict[str, Any]:
        return {
            "status": list(self.status), "matrices": torch.from_numpy(self.matrices), "landmarks": torch.from_numpy(self.landmarks),
            "crops": torch.from_numpy(self.crops), "masks": torch.from_numpy(self.masks), "cuts": list(self.cuts),
        }

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> "ShotTrack":
        return cls(list(entry["status"]), entry["matrices"].numpy(), entry["landmarks"].numpy(),
                   entry["crops"].numpy(), entry["masks"].numpy(), list(entry["cuts"]))


def track_shot(info, start: int, end: int, *, selector, lsd_size: int, progress: Progress | None, should_cancel: ShouldCancel | None) -> ShotTrack:
    from .analysis import CutDetector
    from .face import FaceStatus, FaceTracker, lower_face_mask, track_and_align, warp_crop
    from .media import iter_frames

    n = end - start
    status: list[str] = []
    matrices = np.full((n, 2, 3), np.nan)
    landmarks = np.full((n, 478, 3), np.nan, dtype=np.float32)
    crops = np.zeros((n, lsd_size, lsd_size, 3), np.uint8)
    masks = np.zeros((n, lsd_size, lsd_size), np.uint8)
    detector = CutDetector()
    cut_frames: list[int] = []
    seen = 0

    def cut_hook(frame: np.ndarray) -> bool:
        nonlocal seen
        cut = detector.is_cut(frame)
        if cut:
            cut_frames.append(seen)
        seen += 1
        return cut

    with FaceTracker(selector=selector) as tracker:
        for tracked in track_and_align(iter_frames(info, start, end), tracker=tracker, is_cut=cut_hook):
            if should_cancel is not None and should_cancel():
                raise CancelledError(f"cancelled while tracking frame {tracked.frame_index}")
            i = tracked.frame_index - start
            obs = tracked.observation
            if tracked.alignment.valid and obs.status is FaceStatus.OK:
                matrices[i] = tracked.alignment.matrix_for(224)
                landmarks[i] = obs.landmarks
                small = tracked.alignment.matrix_for(lsd_size)
                crops[i] = warp_crop(tracked.frame, small, lsd_size)
                masks[i] = lower_face_mask(obs.landmarks, small, lsd_size) > 0.5
                status.append("ok")
            else:
                status.append(obs.status.value if obs.status is not FaceStatus.OK else "low_confidence")
            if progress is not None:
                progress("track", i + 1, n)
    return ShotTrack(status, matrices, landmarks, crops, masks, cut_frames)


def edit_runs(track: ShotTrack, settings: DubSettings) -> tuple[list[tuple[int, int]], list[PassthroughRange]]:
    """Stretches of usable frames to edit (never across a cut) and what passes through, with why."""
    n = len(track.status)
    cuts = set(track.cuts)
    runs: list[tuple[int, int]] = []
    reasons = list(track.status)
    i = 0
    while i < n:
        if reasons[i] != "ok":
            i += 1
            continue
        j = i + 1
        while j < n and reasons[j] == "ok" and j not in cuts:
            j += 1
        if j - i >= settings.min_run_frames:
            runs.append((i, j))
        else:
            for k in range(i, j):
                reasons[k] = "too_short"
        i = j
    passthrough: list[PassthroughRange] = []
    for k, reason in enumerate(reasons):
        if reason == "ok":
            continue
        if passthrough and passthrough[-1].end_frame == k and passthrough[-1].reason == reason:
            last = passthrough.pop()
            passthrough.append(PassthroughRange(last.start_frame, k + 1, reason))
        else:
            passthrough.append(PassthroughRange(k, k + 1, reason))
    return runs, passthrough


def _ramp(run: tuple[int, int], total: int, frames: int) -> np.ndarray:
    """Edit strength per frame of a run: ramps in after a passed-through frame and out before one."""
    a, b = run
    strength = np.ones(b - a, np.float32)
    if frames <= 0:
        return strength
    steps = (np.arange(1, frames + 1, dtype=np.float32) / (frames + 1))[: b - a]
    if a > 0:
        strength[: len(steps)] = np.minimum(strength[: len(steps)], steps)
    if b < total:
        strength[-len(steps):] = np.minimum(strength[-len(steps):], steps[::-1])
    return strength


# ----------------------------------------------------------------------------- the renderer
class ShotRenderer:
    """Dubs shots with one loaded bundle (a daemon worker keeps one of these)."""

    def __init__(self, models: LoadedModels, *, settings: DubSettings | None = None, cache: InversionCache | None = None):
        from .pipeline import DubbingPipeline

        self.models = models
        defaults = settings or DubSettings().with_overrides(**models.info.defaults)
        self.pipeline = DubbingPipeline(lsd=models.lsd, srd=models.srd, settings=defaults)
        self.cache = cache

    def dub_shot(self, request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None,
                 output_path: str | Path | None = None) -> RenderedClip:
        from .face import FaceSelector
        from .media import ClipWriter, Codec, probe_video

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        shot = f"shot {request.shot_id!r}"
        info = probe_video(request.source.path)
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
        out = self._output_path(request, info, output_path)
        settings = self.pipeline.settings.with_overrides(
            steps=request.options.steps, inversion_steps=request.options.inversion_steps,
            guidance_scale=request.options.guidance_scale, seed=request.options.seed,
        )
        selector = FaceSelector.parse(str(request.options.face))
        n = end - start
        dub16, dub48, dub_end_s = self._dub_audio(request, info.rate, n)

        key = InversionCache.key(source=source_identity(info.path), start=start, end=end, model=self.models.identity["sha256"],
                                 face=str(selector), lsd_size=self.pipeline.lsd_size,
                                 settings={k: getattr(settings, k) for k in ("inversion_steps", "window_frames", "window_stride", "section_frames", "carry_frames", "min_run_frames")})
        entry = self.cache.get(key) if self.cache is not None else None
        cache_hit = entry is not None
        if entry is None:
            track = track_shot(info, start, end, selector=selector, lsd_size=self.pipeline.lsd_size, progress=progress, should_cancel=should_cancel)
            original_units = self._units(self._source_audio(info, start, end), info.rate, n).shot
            entry = {"track": track.to_entry(), "original_units": torch.from_numpy(original_units), "latents": {}}
        else:
            track = ShotTrack.from_entry(entry["track"])
            original_units = entry["original_units"].numpy()
        timings["track_s"] = time.perf_counter() - t0
        runs, passthrough = edit_runs(track, settings)
        if not runs:
            raise NoFaceError(
                f"{shot}: no usable face in {info.path.name} frames {start}-{end - 1} ({_summary(passthrough)})",
                hint="check the range and --face; faces smaller than about 20 px, in profile or covered cannot be dubbed",
                details={"passthrough": [r.__dict__ for r in passthrough]},
            )
        dub = self._units(dub16, info.rate, n, dub_end_s=dub_end_s)

        t1 = time.perf_counter()
        latents: dict[str, dict] = entry["latents"]
        edited_lsd: dict[tuple[int, int], np.ndarray] = {}
        for run in runs:
            a, b = run
            run_latents = latents.setdefault(f"{a}-{b}", {})
            edited_lsd[run] = self.pipeline.lip_sync(
                track.crops[a:b], track.masks[a:b], original_units[a:b], dub.shot[a:b], settings=settings,
                latents=run_latents, progress=progress, should_cancel=should_cancel,
            )
        timings["lip_sync_s"] = time.perf_counter() - t1
        if self.cache is not None and not cache_hit:
            self.cache.put(key, entry)

        t2 = time.perf_counter()
        codec = Codec(request.output.codec)
        patch_path = out.with_name(out.stem + "_patch.mov") if request.output.patch else None
        if patch_path is not None and patch_path.exists():
            raise OutputExistsError(f"{shot}: {patch_path} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        with contextlib.ExitStack() as stack:
            writer = stack.enter_context(ClipWriter(out, width=info.width, height=info.height, rate=info.rate, codec=codec,
                                                    timecode=info.timecode_at(start), audio=dub48, audio_sample_rate_hz=48000))
            patch = None
            if patch_path is not None:
                patch = stack.enter_context(ClipWriter(patch_path, width=info.width, height=info.height, rate=info.rate,
                                                       codec=Codec.PRORES_4444, timecode=info.timecode_at(start)))
            self._write(info, start, n, track, runs, edited_lsd, settings, writer, patch, progress, should_cancel)
            path = writer.close()
            if patch is not None:
                patch.close()
        timings["restore_and_encode_s"] = time.perf_counter() - t2
        timings["total_s"] = time.perf_counter() - t0
        edited = sum(b - a for a, b in runs)
        return RenderedClip(
            shot_id=request.shot_id, path=str(path), start_frame=0, end_frame=n, rate=info.rate,
            timecode=info.timecode_at(start), frames_edited=edited, frames_passed_through=tuple(passthrough),
            qc={"dub_padded_frames": int(dub.padded_frames), "dub_cut_s": float(dub.cut_s), "cache_hit": cache_hit,
                "timings": {k: round(v, 3) for k, v in timings.items()}, "settings": settings.to_dict(),
                "source": {"path": str(info.path), "start_frame": start, "end_frame": end}},
            model=dict(self.models.identity), record=dict(request.record),
            patch_path=None if patch_path is None else str(patch_path),
        )

    # -- pieces --------------------------------------------------------------------------
    def _output_path(self, request: ShotRequest, info, explicit: str | Path | None) -> Path:
        ext = OUTPUT_EXTENSIONS[request.output.codec]
        if explicit is not None:
            out = Path(explicit).expanduser()
            if out.suffix.lower() != ext:
                raise InvalidArgumentError(f"shot {request.shot_id!r}: {out.name} must end in {ext} for {request.output.codec}",
                                           hint=f"name it {out.stem}{ext}, or choose the codec that writes {out.suffix}")
        else:
            folder = Path(request.output.dir or ".").expanduser()
            name = request.output.name or f"{info.path.stem}_{request.shot_id}_dub"
            out = folder / (name if name.endswith(ext) else name + ext)
        if out.exists():
            raise OutputExistsError(f"shot {request.shot_id!r}: {out} already exists; EdiDub never overwrites media",
                                    hint="choose another output name or move the existing file away")
        if not out.parent.is_dir():
            raise InvalidArgumentError(f"shot {request.shot_id!r}: output folder {out.parent} does not exist", hint="create it first")
        return out

    def _dub_audio(self, request: ShotRequest, rate: Fraction, n: int) -> tuple[np.ndarray, np.ndarray, float]:
        """The dub speech laid out on the shot's clock, at 16 kHz (units) and 48 kHz (the output's sound)."""
        from .media import load_audio

        shot_s = float(Fraction(n) / rate)
        parts = []
        for i, seg in enumerate(request.dub_audio):
            if not Path(seg.path).is_file():
                raise MediaNotFoundError(f"shot {request.shot_id!r}: dub audio {seg.path} does not exist",
                                         hint="check the path of the dub line (and that its drive is mounted)")
            parts.append((seg, load_audio(seg.path, start_s=seg.start_s, duration_s=seg.duration_s, sample_rate_hz=16000),
                          load_audio(seg.path, start_s=seg.start_s, duration_s=seg.duration_s, sample_rate_hz=48000)))
        dub_end_s = max(seg.offset_s + len(a16) / 16000 for seg, a16, _ in parts)
        length_s = max(shot_s, dub_end_s)
        out16 = np.zeros(int(round(length_s * 16000)), np.float32)
        out48 = np.zeros(int(round(length_s * 48000)), np.float32)
        for seg, a16, a48 in parts:
            for buf, audio, sr in ((out16, a16, 16000), (out48, a48, 48000)):
                at = int(round(seg.offset_s * sr))
                stop = min(len(buf), at + len(audio))
                buf[at:stop] += audio[: stop - at]
        return out16, out48[: int(round(shot_s * 48000))], dub_end_s

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

    def _write(self, info, start, n, track, runs, edited_lsd, settings, writer, patch, progress, should_cancel) -> None:
        """Encode the shot in order; ``patch`` (optional) gets the edited region alone with the matte as alpha.

        The patch is meant to be laid over the untouched original: its colour is the
        composited frame and its alpha the feathered matte, so the core of the edit is
        exact and everything outside the matte is the original media itself.
        """
        import cv2

        from .face import feathered_matte, lower_face_mask, paste_back, warp_crop
        from .media import iter_frames

        def layer(frame: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
            rgba = np.empty((*frame.shape[:2], 4), np.uint8)
            rgba[..., :3] = frame
            rgba[..., 3] = 0 if alpha is None else np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8)
            return rgba

        size = self.pipeline.srd_size
        scale = size / 224.0
        feather = settings.feather_px * scale
        blocks: list[tuple[int, int, tuple[int, int] | None]] = []
        cursor = 0
        for run in runs:
            a, b = run
            if cursor < a:
                blocks.append((cursor, a, None))
            for c in range(a, b, settings.srd_chunk_frames):
                blocks.append((c, min(b, c + settings.srd_chunk_frames), run))
            cursor = b
        if cursor < n:
            blocks.append((cursor, n, None))
        written = 0
        for a, b, run in blocks:
            if should_cancel is not None and should_cancel():
                raise CancelledError(f"cancelled at frame {start + a}")
            if run is None:
                for _, frame in iter_frames(info, start + a, start + b):
                    writer.write(frame)
                    if patch is not None:
                        patch.write(layer(frame, None))
                    written += 1
                    if progress is not None:
                        progress("render", written, n)
                continue
            matrices = [self._matrix(track.matrices[k], size) for k in range(a, b)]
            crops = np.stack([warp_crop(frame, m, size) for (_, frame), m in zip(iter_frames(info, start + a, start + b), matrices)])
            masks = np.stack([lower_face_mask(track.landmarks[k], m, size) > 0.5 for k, m in zip(range(a, b), matrices)])
            low = edited_lsd[run][a - run[0] : b - run[0]]
            restored = self.pipeline.restore(crops, masks, low, seed=settings.seed + start + a, settings=settings,
                                             should_cancel=should_cancel)
            strength = _ramp(run, n, settings.crossfade_frames)[a - run[0] : b - run[0]]
            for k, (_, frame) in enumerate(iter_frames(info, start + a, start + b)):
                matte = feathered_matte(masks[k].astype(np.float32), feather_px=feather) * strength[k]
                composited = paste_back(frame, restored[k], crops[k], matrices[k], matte)
                writer.write(composited)
                if patch is not None:
                    alpha = cv2.warpAffine(matte, matrices[k], (info.width, info.height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
                    patch.write(layer(composited, alpha))
                written += 1
                if progress is not None:
                    progress("render", written, n)

    @staticmethod
    def _matrix(matrix224: np.ndarray, size: int) -> np.ndarray:
        from .face.alignment import FaceAlignment

        return FaceAlignment(frame_index=0, valid=True, matrix=matrix224).matrix_for(size)


def _summary(passthrough: list[PassthroughRange]) -> str:
    counts: dict[str, int] = {}
    for r in passthrough:
        counts[r.reason] = counts.get(r.reason, 0) + r.end_frame - r.start_frame
    return ", ".join(f"{v} frame(s) {k.replace('_', ' ')}" for k, v in counts.items()) or "no frames"


# ----------------------------------------------------------------------------- the daemon's runner
_renderer: ShotRenderer | None = None


def dub_shot(request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> RenderedClip:
    """Dub one shot with the default bundle, loaded once per process and kept (the daemon's runner)."""
    global _renderer
    if _renderer is None:
        _renderer = ShotRenderer(LoadedModels.load(), cache=InversionCache())
    return _renderer.dub_shot(request, progress=progress, should_cancel=should_cancel)


__all__ = ["LoadedModels", "ShotRenderer", "ShotTrack", "dub_shot", "edit_runs", "track_shot"]
