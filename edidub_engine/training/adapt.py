"""Actor adaptation (``edidub adapt``): fine-tune a bundle's LSD on one actor's own footage.

A cut already holds hours of each actor's takes, picture and own speech together: exactly the
paper's self-supervised training pairs (lower face masked, the actor's own speech units, a
landmark-matched reference frame outside the exclusion window). So adaptation is the paper's
training, started from the base bundle's LSD:

1. each clip's range is split: the last fifth (at least one LSD window) is held back for
   validation, the rest is cut to a lossless excerpt with its audio and prepared as a
   dataset (``edidub prepare``, with the base bundle's codebook);
2. the LSD trains from the base weights in chunks (``train(..., until_step=)``, so a stop at any
   point resumes exactly); after each chunk its EMA weights dub the held-back frames with their
   own speech, and the round trip's PSNR inside the mask is the validation figure;
3. the best weights are kept; training stops at the step or time budget, or when the figure has
   not improved for ``patience`` validations;
4. the output is the base bundle with the adapted LSD, its card saying the base (and its hash),
   the clips and frames used, steps, time, device and the figures before and after. The base
   bundle is never written to.

The SRD is kept from the base bundle (the shipped starter restores with bicubic upsampling).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edidub_engine.errors import CancelledError, InvalidArgumentError, NoFaceError, OutputExistsError

__all__ = ["AdaptClip", "AdaptResult", "adapt_bundle", "clips_from_timeline", "eta_s", "held_back_range", "parse_clip", "run_adapt_job", "work_folder"]

STATE_NAME = "adapt.json"
MIN_FACE_FRACTION = 0.8  # of the held-back frames; a clip with fewer is not this actor's close-up
SILENCE_RMS = 1e-3  # full scale; below it the clip has no speech to learn from


@dataclass(frozen=True)
class AdaptClip:
    """One take of the actor: frames ``[start, end)`` of ``path`` (``end`` None: to the clip's end)."""

    path: Path
    start: int = 0
    end: int | None = None


@dataclass
class AdaptResult:
    bundle: Path
    steps: int
    seconds: float
    before_db: float
    best_db: float
    best_step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: str = ""


def work_folder(out: str | Path) -> Path:
    """Where an adaptation into ``out`` keeps its resumable state: ``.<name>.adapt`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.adapt"


def held_back_range(start: int, end: int) -> tuple[int, int, int]:
    """``(train_start, split, end)``: the last fifth of ``[start, end)`` (25 to 75 frames) is held back."""
    n = end - start
    held = min(75, max(25, round(0.2 * n)))
    if n - held < 50:
        raise InvalidArgumentError(f"frames {start}-{end - 1} are too short to adapt on ({n} frames)",
                                   hint="give at least 75 frames (3 s at 25 fps) of the actor speaking")
    return start, end - held, end


@dataclass
class _Held:
    name: str
    crops: np.ndarray
    masks: np.ndarray
    units: np.ndarray


def _excerpt(info, start: int, end: int, out: Path) -> None:
    """Frames ``[start, end)`` of ``info`` with their own audio, as a lossless FFV1 clip in the source's pixels."""
    from edidub_engine.media import ClipWriter, Codec, iter_pictures, load_audio

    rate = float(info.rate)
    audio = load_audio(info.path, start_s=start / rate, duration_s=(end - start) / rate, sample_rate_hz=16000)
    with ClipWriter(out, width=info.width, height=info.height, rate=info.rate, codec=Codec.FFV1, audio=audio,
                    audio_sample_rate_hz=16000, color=info.color, source_format=info.pix_fmt) as writer:
        for _, picture in iter_pictures(info, start, end):
            writer.write_picture(picture)


def _held_back(renderer, info, start: int, end: int) -> _Held:
    """The validation stretch at the LSD's size, with its own speech units; refuses silent or faceless clips."""
    from edidub_engine.face import FaceSelector
    from edidub_engine.render import track_shot

    audio = renderer._source_audio(info, start, end)
    if audio.size == 0 or float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENCE_RMS:
        raise InvalidArgumentError(f"{info.path.name}: frames {start}-{end - 1} are silent; adaptation learns from the actor's own speech",
                                   hint="give takes where the actor speaks, with their production sound")
    track = track_shot(info, start, end, selector=FaceSelector.largest(), lsd_size=renderer.pipeline.lsd_size,
                       progress=None, should_cancel=None)
    ok = [k for k, s in enumerate(track.status) if s == "ok"]
    if len(ok) < MIN_FACE_FRACTION * (end - start):
        raise NoFaceError(f"{info.path.name}: a face was found in only {len(ok)} of frames {start}-{end - 1}",
                          hint="adapt on takes where the actor's face is visible, frontal enough and uncovered")
    units = renderer._units(audio, info.rate, end - start).shot
    return _Held(info.path.name, track.crops[ok], track.masks[ok], units[ok])


def _validate(renderer, held: Sequence[_Held]) -> float:
    """Mean PSNR inside the mask of the own-speech round trip over the held-back stretches (fixed seed)."""
    from edidub_engine.evaluation.metrics import psnr

    pipeline = renderer.pipeline
    figures = []
    for h in held:
        out = pipeline.lip_sync(h.crops, h.masks, h.units, h.units, settings=replace(pipeline.settings, seed=0))
        figures.append(psnr(out, h.crops, np.repeat(h.masks.astype(bool)[..., None], 3, axis=-1)))
    return float(np.mean(figures))


def _load_ema(checkpoint: Path, model) -> None:
    import torch

    from .trainer import STATE_NAME as CHECKPOINT_STATE

    state = torch.load(checkpoint / CHECKPOINT_STATE, map_location="cpu", weights_only=False)
    own = model.state_dict()
    model.load_state_dict({k: (state["ema"]["shadow"][k].to(v.dtype) if k in state["ema"]["shadow"] else v) for k, v in own.items()})


def adapt_bundle(
    clips: Sequence[AdaptClip],
    out_dir: str | Path,
    *,
    base: str | Path | None = None,
    name: str | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    validate_every: int = 100,
    patience: int = 3,
    resume: bool = False,
    device: str | None = None,
    overrides: dict[str, Any] | None = None,
    lr: float | None = None,
    log: Callable[[str], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> AdaptResult:
    """Fine-tune ``base``'s LSD on ``clips`` and write the adapted bundle to ``out_dir`` (see the module docstring).

    ``steps``/``minutes``: budgets (at least one; the first reached ends training). ``lr``: the learning
    rate (default the base's, at most 2e-4). ``overrides``:
    TrainConfig fields (tests use tiny batches). ``on_step(done, total)`` reports progress
    (total 0 when only a time budget bounds it); ``log`` gets one line per validation.
    The work folder ``.<out name>.adapt`` beside ``out_dir`` holds the resumable state.
    """
    import torch

    from edidub_engine.files import write_json_atomically
    from edidub_engine.media import probe_video
    from edidub_engine.models.bundle import read_bundle, resolve_bundle
    from edidub_engine.render import LoadedModels, ShotRenderer

    from .config import CONFIG_NAME, TrainConfig
    from .prepare import file_sha256, prepare_dataset
    from .trainer import latest_checkpoint, train

    say = log or (lambda _line: None)
    if steps is None and minutes is None:
        raise InvalidArgumentError("give a budget: --steps N or --minutes N", hint="e.g. --minutes 20 on a CPU, --steps 2000 on a GPU")
    if not clips:
        raise InvalidArgumentError("no clips to adapt on", hint="give the actor's takes: edidub adapt TAKE.mov … -o DIR")
    out = Path(out_dir).expanduser().absolute()
    if out.exists():
        raise OutputExistsError(f"{out} already exists; EdiDub never overwrites a bundle", hint="choose another -o folder")
    info = read_bundle(resolve_bundle(base))
    if out.resolve() == info.path.resolve():
        raise InvalidArgumentError("the adapted bundle cannot replace its base", hint="choose another -o folder")
    work = work_folder(out)
    state_path = work / STATE_NAME
    if work.exists() and not resume:
        raise OutputExistsError(f"an adaptation into {out} was stopped part-way ({work} holds it)",
                                hint="run the same command with --resume to continue it, or remove that folder to start over")
    if resume and not work.is_dir():
        raise InvalidArgumentError(f"nothing to resume: {work} not found", hint="run without --resume")

    models = LoadedModels.load(info.path)
    if device:
        models = models.to(device)
    renderer = ShotRenderer(models)
    base_sha = models.identity["sha256"]

    # ---- the clips: held-back stretches (checked before anything is written), then training excerpts
    held, used, spans = [], [], []
    for clip in clips:
        clip_info = probe_video(clip.path)
        end = clip_info.frame_count if clip.end is None else min(int(clip.end), clip_info.frame_count)
        if not 0 <= clip.start < end:
            raise InvalidArgumentError(f"{clip_info.path.name}: frames {clip.start}-{end - 1} are outside the clip "
                                       f"({clip_info.frame_count} frames)")
        first, split, last = held_back_range(int(clip.start), end)
        say(f"clip {clip_info.path.name}: training on frames {first}-{split - 1}, validating on {split}-{last - 1}")
        held.append(_held_back(renderer, clip_info, split, last))
        spans.append((clip_info, first, split))
        used.append({"path": str(clip_info.path), "sha256": file_sha256(clip_info.path), "train_frames": [first, split],
                     "validation_frames": [split, last]})
    (work / "videos").mkdir(parents=True, exist_ok=True)
    try:
        for k, (clip_info, first, split) in enumerate(spans):
            excerpt = work / "videos" / f"{k:03d}_{clip_info.path.stem}.mkv"
            if not excerpt.exists():
                _excerpt(clip_info, first, split, excerpt)
        report = prepare_dataset(work / "videos", work / "dataset", codebook_path=info.codebook_path, units=info.frontend,
                                 progress=False)
        if report.failed:
            bad = report.failed[0]
            raise NoFaceError(f"{bad.name}: {bad.reason}", hint="adapt on takes where the actor's face is visible and they speak")
    except BaseException:
        if not state_path.is_file():  # nothing trained yet: leave nothing behind
            shutil.rmtree(work, ignore_errors=True)
        raise

    # ---- the run: the base LSD's own training settings, fine-tuning from its weights
    card = json.loads((info.lsd_dir / "model_card.json").read_text(encoding="utf-8")) if (info.lsd_dir / "model_card.json").is_file() else {}
    trained = {k: v for k, v in ((card.get("training") or {}).get("config") or {}).items() if k != "format"}
    base_config = TrainConfig.from_dict(trained) if trained else TrainConfig(task="lsd", model_preset="lsd-tiny")
    budget = int(steps) if steps else 1_000_000
    lr = float(lr) if lr else min(base_config.lr, 2e-4)  # fine-tuning: a tenth of the starter's peak, constant after a warm-up
    config = replace(base_config, init_from=str(info.lsd_dir), steps=budget, lr=lr, min_lr=lr, warmup_steps=min(50, budget),
                     checkpoint_every=validate_every, keep_checkpoints=2, log_every=max(1, validate_every // 4),
                     ema_decay=min(base_config.ema_decay, 0.99), **(overrides or {}))
    run = work / "run"

    state = json.loads(state_path.read_text(encoding="utf-8")) if resume else {}
    if state and state.get("base_sha256") != base_sha:
        raise InvalidArgumentError("the stopped adaptation started from another base bundle", hint=f"remove {work} to start over")
    if not state:
        before = _validate(renderer, held)
        say(f"base {info.name} {info.version}: validation {before:.2f} dB inside the mask (own-speech round trip)")
        state = {"base_sha256": base_sha, "before_db": before, "best_db": before, "best_step": 0, "step": 0,
                 "seconds": 0.0, "history": [{"step": 0, "validation_db": before}]}
        write_json_atomically(state_path, state)
    best_path = work / "best.pt"
    lsd = renderer.pipeline.lsd
    started, stopped = time.perf_counter() - float(state["seconds"]), ""
    while True:
        step = int(state["step"])
        since_best = (step - int(state["best_step"])) // validate_every
        if step >= budget:
            stopped = f"reached {budget} steps"
        elif minutes is not None and time.perf_counter() - started >= 60.0 * minutes:
            stopped = f"reached the {minutes:g}-minute budget"
        elif since_best >= patience:
            stopped = f"no better validation for {patience} checks"
        elif should_cancel is not None and should_cancel():
            stopped = "cancelled"
        if stopped:
            break
        target = min(budget, step + validate_every)
        fresh = not (run / CONFIG_NAME).is_file()
        train(work / "dataset" if fresh else None, run, config if fresh else None, resume=not fresh, until_step=target,
              device=device, progress=False, command=["edidub", "adapt"],
              data_licence="the production's own footage of the actor (user-supplied)")
        _load_ema(latest_checkpoint(run), lsd)
        figure = _validate(renderer, held)
        state["history"].append({"step": target, "validation_db": figure})
        if figure > float(state["best_db"]):
            torch.save({k: v.detach().clone() for k, v in lsd.state_dict().items()}, best_path)
            state["best_db"], state["best_step"] = figure, target
        state["step"], state["seconds"] = target, time.perf_counter() - started
        write_json_atomically(state_path, state)
        say(f"step {target}: validation {figure:.2f} dB (best {state['best_db']:.2f} at step {state['best_step']}, "
            f"base {state['before_db']:.2f})")
        if on_step is not None:
            on_step(target, budget if steps else 0)
    if stopped == "cancelled":
        raise CancelledError(f"adaptation cancelled at step {state['step']}; --resume continues it")

    seconds = time.perf_counter() - started
    adaptation = {
        "made_from": "the user's own footage of the actor (not redistributable with the bundle unless its rights allow)",
        "base": {"name": info.name, "version": info.version, "sha256": base_sha},
        "clips": used, "steps": int(state["step"]), "best_step": int(state["best_step"]), "seconds": round(seconds, 1),
        "device": str(next(lsd.parameters()).device), "stopped": stopped,
        "validation": {"metric": "own-speech round trip, PSNR inside the lower-face mask at the LSD size, held-back frames",
                       "before_db": round(float(state["before_db"]), 3), "after_db": round(float(state["best_db"]), 3),
                       "history": state["history"]},
        "config": {k: v for k, v in config.to_dict().items() if k in ("lr", "batch_size", "window_frames", "size", "ema_decay")},
    }
    if best_path.is_file():
        lsd.load_state_dict(torch.load(best_path, map_location="cpu", weights_only=True))
    else:  # nothing beat the base: the bundle carries the base weights, and says so
        lsd.load_state_dict(LoadedModels.load(info.path).lsd.state_dict())
    bundle = _write_bundle(info, lsd, out, name=name or f"{info.name}-{Path(clips[0].path).stem}", adaptation=adaptation)
    shutil.rmtree(work, ignore_errors=True)
    return AdaptResult(bundle=bundle, steps=int(state["step"]), seconds=seconds, before_db=float(state["before_db"]),
                       best_db=float(state["best_db"]), best_step=int(state["best_step"]), history=state["history"], stopped=stopped)


def _write_bundle(info, lsd, out: Path, *, name: str, adaptation: dict[str, Any]) -> Path:
    """The base bundle's files with the adapted LSD weights and cards, published atomically at ``out``."""
    import torch
    from safetensors.torch import load_file, save_file

    from edidub_engine.models.bundle import read_bundle, write_bundle_manifest

    from .export import _publish_dir, _sha256

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        shutil.copytree(info.path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        weights = tmp / "lsd" / "diffusion_pytorch_model.safetensors"
        dtypes = {k: v.dtype for k, v in load_file(weights).items()}  # the base's storage precision (fp16 for the starter)
        state = lsd.state_dict()
        save_file({k: state[k].detach().to("cpu", dtypes.get(k, torch.float32)).contiguous() for k in dtypes}, weights)
        lsd_card_path = tmp / "lsd" / "model_card.json"
        lsd_card = json.loads(lsd_card_path.read_text(encoding="utf-8")) if lsd_card_path.is_file() else {}
        lsd_card["adaptation"] = adaptation
        lsd_card.setdefault("model", {}).setdefault("weights", {})["sha256"] = _sha256(weights)
        lsd_card_path.write_text(json.dumps(lsd_card, indent=2) + "\n", encoding="utf-8")
        card = json.loads((tmp / "model_card.json").read_text(encoding="utf-8"))
        base_check = card.pop("check", None) or {}
        if "srd" in base_check:  # the SRD is the base's own: its verdict (at its stage and end to end) holds; the LSD's figures do not
            whole = {k: v for k, v in (base_check.get("end_to_end") or {}).items() if k in ("restore", "with_srd_db", "with_bicubic_db")}
            card["check"] = {"srd": base_check["srd"], "end_to_end": whole,
                             "measured_on": f"{info.name} {info.version} (the same SRD); run `edidub check` for this LSD's figures"}
        card.update({"name": name, "description": f"{info.name} adapted to an actor's own footage ({len(adaptation['clips'])} clip(s))",
                     "lsd": lsd_card, "adaptation": adaptation})
        write_bundle_manifest(tmp, name=name, version="1", frontend=info.frontend, card=card, defaults=info.defaults)
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out).path


def run_adapt_job(spec: dict[str, Any], *, bundles: dict[str, Path], default: str, device: str | None = None,
                  progress: Callable[[str, int, int], None] | None = None, should_cancel: Callable[[], bool] | None = None) -> dict[str, Any]:
    """A daemon ``adapt`` job on a worker that serves ``bundles``: the adaptation, resumed from the work folder a stopped
    daemon left; returns the figures ``result`` gives (name, path, before_db, after_db, steps, best_step, seconds, stopped)."""
    from edidub_engine.errors import ModelMissingError

    base = spec.get("base") or default
    if base not in bundles:
        raise ModelMissingError(f"base bundle {base!r} is not served here", hint=f"choose one of {', '.join(sorted(bundles))}")
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    clips = [AdaptClip(Path(c["path"]), int(c.get("start_frame") or 0), c.get("end_frame")) for c in spec["clips"]]
    result = adapt_bundle(clips, out, base=bundles[base], name=spec["name"], steps=spec.get("steps"), minutes=spec.get("minutes"),
                          validate_every=int(spec.get("validate_every") or 100), resume=work_folder(out).is_dir(), device=device,
                          should_cancel=should_cancel,
                          on_step=(lambda done, total: progress("adapt", done, total or done)) if progress else None)
    return {"name": spec["name"], "path": str(result.bundle), "before_db": round(result.before_db, 3), "after_db": round(result.best_db, 3),
            "steps": result.steps, "best_step": result.best_step, "seconds": round(result.seconds, 1), "stopped": result.stopped}


def parse_clip(text: str) -> AdaptClip:
    """``PATH`` or ``PATH@START-END`` (frames, end exclusive; either side may be empty)."""
    path, sep, span = text.rpartition("@") if "@" in text else (text, "", "")
    if not sep:
        return AdaptClip(Path(text).expanduser())
    first, dash, last = span.partition("-")
    try:
        return AdaptClip(Path(path).expanduser(), int(first) if first else 0, int(last) if last else None)
    except ValueError:
        raise InvalidArgumentError(f"{text!r}: the range after @ must be START-END frames", hint="e.g. take1.mov@0-300") from None


def clips_from_timeline(path: str | Path, *, clip_name: str, picture_tracks: Sequence[str] | None = None, rate: str | None = None,
                        timeline_name: str | None = None, log: Callable[[str], None] | None = None) -> list[AdaptClip]:
    """The takes of one actor in a cut: every picture clip whose name matches ``clip_name`` (a shell pattern,
    case-insensitive: ``ANNA_*``), as its media file and the source frames the cut uses. The audio under a
    take in its own media is its production sound. Clips too short to hold back a validation stretch are
    left out and said."""
    import fnmatch

    from otio_adapters import read_timeline, shots_from_timeline

    read = read_timeline(Path(path).expanduser(), rate=rate, timeline_name=timeline_name)
    shots = shots_from_timeline(read.timeline, dub_track=None, picture_tracks=list(picture_tracks) if picture_tracks else None,
                                handles=None, check_media_exists=True)
    say = log or (lambda _line: None)
    clips = []
    for shot in shots.shots:
        name = str(shot.record.get("clip") or "")
        if not fnmatch.fnmatch(name.lower(), clip_name.lower()):
            continue
        if shot.source.end_frame - shot.source.start_frame < 75:
            say(f"left out {name}: {shot.source.end_frame - shot.source.start_frame} frames, fewer than the 75 adaptation needs")
            continue
        clips.append(AdaptClip(Path(shot.source.path), shot.source.start_frame, shot.source.end_frame))
    if not clips:
        raise InvalidArgumentError(f"no clip of {Path(path).name} matches {clip_name!r} with 75 frames or more",
                                   hint="name the actor's clips in the cut with a common pattern (e.g. ANNA_*) and pass it as --clip-name")
    return clips


def eta_s(done: int, total: int, seconds: float) -> float | None:
    """Seconds left at the present pace, or None when no step is done or there is no step budget."""
    return None if done <= 0 or total <= 0 else seconds / done * max(0, total - done)

