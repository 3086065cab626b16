"""Dataset preparation: a folder of talking-head clips → one shard per clip + ``manifest.json``.

For every clip, once (so that training never decodes video):

* the face track (MediaPipe, :class:`~edidub_engine.face.FaceTracker`) with its smoothed
  alignment, cut-aware (:class:`~edidub_engine.analysis.CutDetector`: the tracker resets
  and smoothing stops at a cut);
* aligned crops at 64 px (LSD) and 224 px (SRD), uint8 RGB, and the lower-face masks at
  both sizes (:func:`~edidub_engine.face.lower_face_mask`);
* the landmarks in 224-crop pixels (for 64-px crop pixels: ``(p + 0.5) * 64 / 224 - 0.5``);
* two speech units per frame from the clip's own audio through the codebook
  (:func:`~edidub_engine.audio.shot_units`; null unit where the audio is missing);
* a validity flag per frame (face OK and alignment valid) and the training reference frame
  of §3.1 (:func:`~.reference.select_references`, never across a cut, -1 if none).

Shard format (``edidub-train-shard/1``): a safetensors file, ``N`` = the clip's frames
(frame ``i`` is grid frame ``i`` of the source, from 0)::

    crops_64      [N x 64 x 64 x 3]    uint8   RGB, zeros where not valid
    crops_224     [N x 224 x 224 x 3]  uint8
    masks_64      [N x 64 x 64]        uint8   {0, 1}
    masks_224     [N x 224 x 224]      uint8   {0, 1}
    landmarks     [N x 478 x 2]        float32 224-crop pixels, NaN where not valid
    matrices      [N x 2 x 3]          float64 frame → 224-crop transform, NaN where not valid
    valid         [N]                  uint8   1 = face OK and alignment valid
    status        [N]                  uint8   0 ok, 1 no face, 2 low confidence
    shot          [N]                  int32   shot number (a cut starts a new one)
    reference     [N]                  int64   reference frame, -1 when none qualifies
    units         [N x 2]              int64   speech units, null unit = codebook clusters

Its string metadata holds ``format``, ``settings_hash`` (everything that changes the
content: sizes, k, smoothing, landmark set, codebook hash, frontend settings),
``source`` (relative path, size, mtime) and ``summary`` (the clip's manifest entry).
safetensors because the datasets read windows by slicing without loading the file
(memory-mapped) and its header is readable without the tensors (resume checks).
Size: ~200 KB per frame (mostly the 224 crops), ~15 MB for a 3 s GRID clip.

Resumable: a clip whose shard exists with the same ``settings_hash`` and source size/mtime
is skipped. Shards are written to a hidden temp name in the same folder and renamed, so a
killed run leaves no half shard under the final name; leftover temp files are removed by
the next run. Bad clips (unreadable, no audio, no face, too short) are listed in the
manifest's ``failed`` and never stop the run.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from edidub_engine.errors import EdidubError, InvalidArgumentError, MediaDecodeError, NoFaceError
from edidub_engine.files import write_json_atomically

from .reference import (
    DEFAULT_EXCLUSION_FRAMES,
    NO_REFERENCE,
    REFERENCE_LANDMARKS_VERSION,
    select_references,
)

__all__ = [
    "CROP_SIZES",
    "DATASET_FORMAT",
    "MANIFEST_NAME",
    "SHARD_FORMAT",
    "VIDEO_SUFFIXES",
    "ClipFailure",
    "PrepareReport",
    "PrepareSettings",
    "file_sha256",
    "list_videos",
    "prepare_clip",
    "prepare_dataset",
    "read_manifest",
    "read_shard_metadata",
    "runs_of",
    "write_shard",
]

SHARD_FORMAT = "edidub-train-shard/1"
DATASET_FORMAT = "edidub-train-dataset/1"
MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
CROP_SIZES = (64, 224)
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".mpg", ".mpeg", ".m4v", ".webm", ".mxf", ".ts")
_TEMP_MARK = ".partial"
_STATUS_CODES = {"ok": 0, "no_face": 1, "low_confidence": 2}


@dataclass(frozen=True)
class PrepareSettings:
    """Everything that changes a shard's content (its hash decides whether a shard is reused).

    ``exclusion_frames``: k of §3.1 (see :mod:`.reference`). ``min_frames``: shorter clips
    are failed as too short (default one 25-frame LSD window). ``smoothing_radius``: the
    alignment smoother's radius (frames). ``codebook_sha256``/``frontend``/``frontend_settings``
    tie the units to the codebook file they came from.
    """

    codebook_sha256: str
    frontend: str
    frontend_settings: dict[str, Any]
    exclusion_frames: int = DEFAULT_EXCLUSION_FRAMES
    min_frames: int = 25
    smoothing_radius: int = 4
    crop_sizes: tuple[int, ...] = CROP_SIZES
    reference_landmarks: str = REFERENCE_LANDMARKS_VERSION
    shard_format: str = SHARD_FORMAT

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["crop_sizes"] = list(self.crop_sizes)
        return d

    @property
    def hash(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClipFailure:
    """A clip that was not prepared: its path relative to the videos folder, the error code and why."""

    name: str
    code: str
    reason: str


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did; ``manifest`` is what it wrote."""

    manifest_path: Path
    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[ClipFailure] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def list_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files under ``folder`` (recursive, by suffix, hidden files skipped), sorted."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidArgumentError(f"videos folder {folder} does not exist", hint="pass a folder of talking-head clips")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def runs_of(mask: np.ndarray, shot: np.ndarray) -> list[list[int]]:
    """Maximal half-open ranges ``[s, e)`` where ``mask`` is true and ``shot`` does not change."""
    mask = np.asarray(mask, dtype=bool)
    runs: list[list[int]] = []
    start = None
    for i in range(len(mask) + 1):
        inside = i < len(mask) and mask[i] and (start is None or shot[i] == shot[start])
        if start is not None and not inside:
            runs.append([start, i])
            start = None
        if start is None and i < len(mask) and mask[i]:
            start = i
    return runs


# --------------------------------------------------------------------------------- one clip


def prepare_clip(
    path: str | os.PathLike,
    *,
    tracker,
    encoder,
    settings: PrepareSettings,
    on_frame: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays of one clip's shard and its summary (no files written).

    ``tracker``: a :class:`~edidub_engine.face.FaceTracker` (reset here); ``encoder``: a
    :class:`~edidub_engine.audio.UnitEncoder`. ``on_frame(done, total)`` reports progress.
    Raises :class:`EdidubError` for a clip that cannot be used (no audio, no face, too short,
    undecodable).
    """
    from edidub_engine.analysis import CutDetector
    from edidub_engine.audio import shot_units
    from edidub_engine.face import FaceStatus, landmarks_to_crop, lower_face_mask, track_and_align, warp_crop
    from edidub_engine.media import iter_frames, probe_video

    started = time.perf_counter()
    info = probe_video(path)
    n = info.frame_count
    if n < settings.min_frames:
        raise InvalidArgumentError(
            f"{info.path.name} is too short: {n} frames, fewer than {settings.min_frames}",
            hint="training clips need at least one window of frames (--min-frames)",
        )
    if not info.has_audio:
        raise MediaDecodeError(f"{info.path.name} has no audio stream", hint="training clips need their own speech")

    units = shot_units(
        encoder,
        info.path,
        rate=info.rate,
        start_frame=0,
        end_frame=n,
        audio_start_s=info.video_start,
        audio_duration_s=Fraction(n) / info.rate,
        context_frames=0,
    ).shot

    s_lo, s_hi = settings.crop_sizes
    crops = {s: np.zeros((n, s, s, 3), np.uint8) for s in settings.crop_sizes}
    masks = {s: np.zeros((n, s, s), np.uint8) for s in settings.crop_sizes}
    landmarks = np.full((n, 478, 2), np.nan, np.float32)
    matrices = np.full((n, 2, 3), np.nan, np.float64)
    valid = np.zeros(n, np.uint8)
    status = np.zeros(n, np.uint8)
    cut_flags = np.zeros(n, bool)

    detector = CutDetector()
    seen = [0]

    def is_cut(frame: np.ndarray) -> bool:  # called once per frame, in order, before tracking it
        cut = detector.is_cut(frame)
        if seen[0] < n:
            cut_flags[seen[0]] = cut
        seen[0] += 1
        return cut

    tracker.reset()
    done = 0
    for tf in track_and_align(iter_frames(info, 0, n), tracker=tracker, radius=settings.smoothing_radius, is_cut=is_cut):
        i = tf.frame_index
        obs = tf.observation
        status[i] = _STATUS_CODES.get(getattr(obs.status, "value", str(obs.status)), 1)
        if tf.alignment.valid and obs.status is FaceStatus.OK and obs.landmarks is not None:
            for s in settings.crop_sizes:
                m = tf.alignment.matrix_for(s)
                crops[s][i] = warp_crop(tf.frame, m, s)
                masks[s][i] = lower_face_mask(obs.landmarks, m, s) > 0.5
            m_hi = tf.alignment.matrix_for(s_hi)
            matrices[i] = m_hi
            landmarks[i] = landmarks_to_crop(obs.landmarks, m_hi)
            valid[i] = 1
        done += 1
        if on_frame is not None:
            on_frame(done, n)
    if done != n:
        raise MediaDecodeError(f"{info.path.name}: decoded {done} of {n} frames", hint="the file may be truncated")
    if not valid.any():
        raise NoFaceError(f"no usable face in any of the {n} frames of {info.path.name}", hint="training clips need a tracked face")

    shot = np.cumsum(cut_flags).astype(np.int32)
    reference = select_references(landmarks, valid.astype(bool), exclusion_frames=settings.exclusion_frames, shot_ids=shot)
    shots = runs_of(np.ones(n, bool), shot)
    arrays = {
        f"crops_{s_lo}": crops[s_lo],
        f"crops_{s_hi}": crops[s_hi],
        f"masks_{s_lo}": masks[s_lo],
        f"masks_{s_hi}": masks[s_hi],
        "landmarks": landmarks,
        "matrices": matrices,
        "valid": valid,
        "status": status,
        "shot": shot,
        "reference": reference.astype(np.int64),
        "units": np.ascontiguousarray(units, dtype=np.int64),
    }
    summary = {
        "frames": int(n),
        "rate": f"{info.rate.numerator}/{info.rate.denominator}",
        "width": int(info.width),
        "height": int(info.height),
        "video_start_s": float(info.video_start_s),
        "valid_frames": int(valid.sum()),
        "frames_with_reference": int((reference != NO_REFERENCE).sum()),
        "no_face_frames": int((status == 1).sum()),
        "low_confidence_frames": int((status == 2).sum()),
        "shots": shots,
        "valid_runs": runs_of(valid.astype(bool), shot),
        "reference_runs": runs_of(valid.astype(bool) & (reference != NO_REFERENCE), shot),
        "prepare_s": round(time.perf_counter() - started, 3),
    }
    return arrays, summary


# --------------------------------------------------------------------------------- shards


def _temp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}{_TEMP_MARK}")


def write_shard(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, str]) -> Path:
    """Write a shard via a temp file in the same folder and an atomic rename (replaces a stale shard)."""
    from safetensors.numpy import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o644)  # safetensors creates 0600 files; a dataset is read by other users' jobs
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_shard_metadata(path: str | os.PathLike) -> dict[str, str] | None:
    """A shard's metadata (header only), or None when it is missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception:  # a truncated or foreign file is simply not a finished shard
        return None


def _source_fingerprint(video: Path, rel: str) -> dict[str, Any]:
    st = video.stat()
    return {"name": rel, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _existing_summary(shard: Path, settings: PrepareSettings, source: dict[str, Any]) -> dict[str, Any] | None:
    meta = read_shard_metadata(shard) if shard.is_file() else None
    if not meta or meta.get("format") != SHARD_FORMAT or meta.get("settings_hash") != settings.hash:
        return None
    try:
        if json.loads(meta["source"]) != source:
            return None
        return json.loads(meta["summary"])
    except (KeyError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours to signal
        return True
    return True


def _remove_leftovers(shards_dir: Path) -> int:
    """Delete temp shards a killed run left (``.<name>.<pid>.partial`` whose process is gone).

    A temp file of a run still going on in the same folder (its pid alive) is left alone.
    """
    removed = 0
    if shards_dir.is_dir():
        for p in shards_dir.rglob(f".*{_TEMP_MARK}"):
            pid = p.name[: -len(_TEMP_MARK)].rsplit(".", 1)[-1]
            if not (p.is_file() and ".safetensors." in p.name and pid.isdigit()):
                continue
            if int(pid) != os.getpid() and _pid_alive(int(pid)):
                continue
            p.unlink(missing_ok=True)
            removed += 1
    return removed


# --------------------------------------------------------------------------------- workers

_WORKER: dict[str, Any] = {}


def _worker_init(settings: PrepareSettings, codebook_path: str, units: str, hubert_dir: str | None, threads: int, slots, progress: bool) -> None:
    """Per process: its own FaceTracker, frontend and encoder (MediaPipe graphs are not shareable)."""
    import cv2

    from edidub_engine.audio import Codebook, UnitEncoder, frontend_for_codebook
    from edidub_engine.face import FaceTracker

    cv2.setNumThreads(threads)
    if units == "hubert":
        import torch

        torch.set_num_threads(threads)
    if slots is not None:
        from edidub_engine.face.native_stderr import install_stderr_filter

        install_stderr_filter()
        with slots.get_lock():
            _WORKER["slot"] = slots.value
            slots.value += 1
    codebook = Codebook.load(codebook_path)
    _WORKER.update(
        settings=settings,
        encoder=UnitEncoder(frontend_for_codebook(codebook, units=units, hubert_dir=hubert_dir), codebook),
        tracker=FaceTracker(),
        progress=progress,
    )


def _job(video: str, rel: str, shard_rel: str, dataset_dir: str, source: dict[str, Any]) -> tuple[str, dict[str, Any] | None, ClipFailure | None]:
    """Prepare one clip in a worker; never raises for a bad clip."""
    bar = None
    try:
        on_frame = None
        if _WORKER.get("progress"):
            from tqdm import tqdm

            bar = tqdm(total=0, desc=rel[-40:], unit="frame", position=_WORKER.get("slot", 0) + 1, leave=False, file=sys.stderr, dynamic_ncols=True)

            def on_frame(done: int, total: int) -> None:
                if bar.total != total:
                    bar.total = total
                if done % 5 == 0 or done == total:
                    bar.n = done
                    bar.refresh()

        settings: PrepareSettings = _WORKER["settings"]
        arrays, summary = prepare_clip(video, tracker=_WORKER["tracker"], encoder=_WORKER["encoder"], settings=settings, on_frame=on_frame)
        summary = {"name": rel, "shard": shard_rel, **summary}
        meta = {
            "format": SHARD_FORMAT,
            "settings_hash": settings.hash,
            "settings": json.dumps(settings.to_dict(), sort_keys=True),
            "source": json.dumps(source, sort_keys=True),
            "summary": json.dumps(summary, sort_keys=True),
        }
        write_shard(Path(dataset_dir) / shard_rel, arrays, meta)
        return rel, summary, None
    except EdidubError as err:
        return rel, None, ClipFailure(rel, err.code, err.message)
    except Exception as exc:  # one strange file must not end a night-long run; it is reported
        return rel, None, ClipFailure(rel, "INTERNAL", f"{type(exc).__name__}: {exc}")
    finally:
        if bar is not None:
            bar.close()


# --------------------------------------------------------------------------------- the run


def _check_codebook(codebook_path: Path, units: str | None, hubert_dir: str | None):
    """Load the codebook and its frontend once, in the caller, so a mismatch fails before any clip."""
    from edidub_engine.audio import Codebook, UnitEncoder, frontend_for_codebook

    codebook = Codebook.load(codebook_path)
    units = units or codebook.frontend
    if units != codebook.frontend:
        raise InvalidArgumentError(
            f"the codebook {codebook_path.name} was fitted on '{codebook.frontend}' features but --units {units} was given",
            hint=f"use --units {codebook.frontend} (or leave --units out), or fit a codebook for '{units}' with `edidub codebook fit`",
            details={"codebook_frontend": codebook.frontend, "units": units},
        )
    if hubert_dir is not None and units != "hubert":
        raise InvalidArgumentError("--hubert applies only to --units hubert", hint="drop --hubert or use a HuBERT codebook")
    encoder = UnitEncoder(frontend_for_codebook(codebook, units=units, hubert_dir=hubert_dir), codebook)  # raises on a settings mismatch
    return codebook, units, encoder


def read_manifest(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a prepared dataset (raises with a hint when there is none)."""
    path = Path(dataset_dir).expanduser() / MANIFEST_NAME
    if not path.is_file():
        raise InvalidArgumentError(
            f"{path.parent} is not a prepared dataset: {MANIFEST_NAME} is missing",
            hint="make one with `edidub prepare VIDEOS_DIR -o DATASET_DIR --codebook CODEBOOK`",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InvalidArgumentError(f"{path} is not valid JSON ({exc})", hint="run `edidub prepare` again to rewrite it") from None
    if manifest.get("format") != DATASET_FORMAT:
        raise InvalidArgumentError(
            f"{path} has format {manifest.get('format')!r}, expected {DATASET_FORMAT!r}",
            hint="prepare the dataset again with this version of edidub",
        )
    return manifest




def prepare_dataset(
    videos_dir: str | os.PathLike,
    dataset_dir: str | os.PathLike,
    *,
    codebook_path: str | os.PathLike,
    units: str | None = None,
    hubert_dir: str | os.PathLike | None = None,
    exclusion_frames: int = DEFAULT_EXCLUSION_FRAMES,
    min_frames: int = 25,
    workers: int = 1,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Prepare every clip under ``videos_dir`` into ``dataset_dir`` (see the module docstring).

    ``units``: 'mel' or 'hubert'; default the codebook's own frontend (any other is an error).
    ``workers``: processes, each with its own FaceTracker (1 = in this process).
    Returns a :class:`PrepareReport`; bad clips are in ``failed``, never raised.
    """
    videos_dir = Path(videos_dir).expanduser().resolve()
    dataset_dir = Path(dataset_dir).expanduser().resolve()
    codebook_path = Path(codebook_path).expanduser().resolve()
    if workers < 1:
        raise InvalidArgumentError(f"--workers must be >= 1, got {workers}", hint="pass 1 or more processes")
    if exclusion_frames < 0:
        raise InvalidArgumentError(f"--exclusion-frames must be >= 0, got {exclusion_frames}", hint=f"the default is {DEFAULT_EXCLUSION_FRAMES}")
    if min_frames < 1:
        raise InvalidArgumentError(f"--min-frames must be >= 1, got {min_frames}", hint="the default is 25 (one LSD window)")
    videos = list_videos(videos_dir)
    if not videos:
        raise InvalidArgumentError(
            f"no video files ({', '.join(VIDEO_SUFFIXES)}) under {videos_dir}", hint="pass a folder of talking-head clips"
        )
    hubert = None if hubert_dir is None else str(Path(hubert_dir).expanduser())
    codebook, units, encoder = _check_codebook(codebook_path, units, hubert)
    codebook_hash = file_sha256(codebook_path)
    settings = PrepareSettings(
        codebook_sha256=codebook_hash,
        frontend=units,
        frontend_settings=encoder.frontend.settings(),
        exclusion_frames=int(exclusion_frames),
        min_frames=int(min_frames),
    )
    shards_dir = dataset_dir / SHARDS_DIR
    shards_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(shards_dir)
    say = log or (lambda text: print(text, file=sys.stderr))

    report = PrepareReport(manifest_path=dataset_dir / MANIFEST_NAME)
    summaries: dict[str, dict[str, Any]] = {}
    todo: list[tuple[str, str, str, dict[str, Any]]] = []
    for video in videos:
        rel = video.relative_to(videos_dir).as_posix()
        shard_rel = f"{SHARDS_DIR}/{rel}.safetensors"
        source = _source_fingerprint(video, rel)
        existing = _existing_summary(dataset_dir / shard_rel, settings, source)
        if existing is not None:
            summaries[rel] = existing
            report.skipped.append(rel)
        else:
            todo.append((str(video), rel, shard_rel, str(dataset_dir), source))

    from tqdm import tqdm

    overall = tqdm(total=len(todo), desc="prepare", unit="clip", position=0, file=sys.stderr, disable=not progress, dynamic_ncols=True)

    def record(rel: str, summary: dict[str, Any] | None, failure: ClipFailure | None) -> None:
        if summary is not None:
            summaries[rel] = summary
            report.prepared.append(rel)
        else:
            report.failed.append(failure)
        overall.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            from edidub_engine.face import FaceTracker

            with FaceTracker() as tracker:
                _WORKER.update(settings=settings, encoder=encoder, tracker=tracker, progress=progress, slot=0)
                try:
                    for job in todo:
                        record(*_job(*job))
                finally:
                    _WORKER.clear()
        else:
            del encoder  # each worker builds its own (a HuBERT model is not sent between processes)
            ctx = multiprocessing.get_context("spawn")  # never fork a process holding MediaPipe/torch threads
            slots = ctx.Value("i", 0)
            threads = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(
                max_workers=min(workers, len(todo)),
                mp_context=ctx,
                initializer=_worker_init,
                initargs=(settings, str(codebook_path), units, hubert, threads, slots, progress),
            ) as pool:
                futures = [pool.submit(_job, *job) for job in todo]
                for future in as_completed(futures):
                    record(*future.result())
    finally:
        overall.close()

    clips = [summaries[v.relative_to(videos_dir).as_posix()] for v in videos if v.relative_to(videos_dir).as_posix() in summaries]
    failed = sorted(report.failed, key=lambda f: f.name)
    report.failed = failed
    manifest = {
        "format": DATASET_FORMAT,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "videos_dir": str(videos_dir),
        "settings": settings.to_dict(),
        "settings_hash": settings.hash,
        "codebook": {
            "path": str(codebook_path),
            "sha256": codebook_hash,
            "frontend": codebook.frontend,
            "frontend_settings": codebook.frontend_settings,
            "clusters": codebook.clusters,
            "null_unit": codebook.null_unit,
            "vocabulary_size": codebook.vocabulary_size,
        },
        "clips": clips,
        "failed": [asdict(f) for f in failed],
        "totals": {
            "clips": len(clips),
            "failed": len(failed),
            "frames": sum(c["frames"] for c in clips),
            "valid_frames": sum(c["valid_frames"] for c in clips),
            "frames_with_reference": sum(c["frames_with_reference"] for c in clips),
        },
    }
    write_json_atomically(report.manifest_path, manifest)
    report.manifest = manifest
    say(
        f"prepared {len(report.prepared)} clip(s), skipped {len(report.skipped)} already done, "
        f"{len(failed)} failed → {report.manifest_path}"
    )
    for f in failed:
        say(f"  failed: {f.name}: [{f.code}] {f.reason}")
    return report
