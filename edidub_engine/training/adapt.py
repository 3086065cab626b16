"""Actor adaptation (``edidub adapt``): fine-tune a bundle's LSD on one actor's own footage.

A cut already holds hours of each actor's takes, picture and own speech together: exactly the
paper's self-supervised training pairs (lower face masked, the actor's own speech units, a
landmark-matched reference frame outside the exclusion window). So adaptation is the paper's
training, started from the base bundle's LSD:

1. each clip's range is split: the last fifth (25 to 75 frames) is held back, the rest is cut
   to a lossless excerpt with its audio and prepared as a dataset (``edidub prepare``, with the
   base bundle's codebook). The held-back fifth is halved: its first half *selects* (chooses the
   best checkpoint), its second half *judges* (gives the final verdict). The best of several
   checkpoints on the frames that chose it is biased upward, so a selection figure alone would
   publish noise-level wins as gains;
2. the LSD trains from the base weights in chunks (``train(..., until_step=)``, so a stop at any
   point resumes exactly); after each chunk its EMA weights dub the selection frames with their
   own speech, and the round trip's PSNR inside the mask is the validation figure;
3. the best weights are kept; training stops at the step or time budget, or when the figure has
   not improved for ``patience`` validations;
4. the chosen weights replace the base's LSD only if they beat it on the verdict frames by the
   gate's margin (0.05 dB); the output is the base bundle with that LSD, its card saying the base
   (and its hash), the clips and frames used, steps, time, device and the verdict figures before
   and after (the selection figures beside them). The base bundle is never written to.

5. the SRD then fine-tunes the same way on the same takes (a quarter of the budget), selected by
   its own stage on the selection frames (PSNR inside the mask of the restored high-res crop)
   and judged, with the same margin, on the verdict frames;
6. a bundle with an adapted SRD is checked (``edidub check`` over the first take's verdict
   stretch, written into its card) before it is published, so ``--restore auto`` runs that SRD
   only if it beats bicubic at its stage and end to end on frames it never trained on and was
   not chosen on; a bundle that kept the base's SRD keeps the base's verdict.
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
from edidub_engine.shot import MIN_ADAPT_TAKE_FRAMES

__all__ = ["AdaptClip", "AdaptResult", "adapt_bundle", "clips_from_timeline", "eta_s", "held_back_range", "parse_clip", "run_adapt_job", "work_folder"]

STATE_NAME = "adapt.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
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
    srd: dict[str, Any] = field(default_factory=dict)  # the SRD's fine-tune, as the card gives it (empty: none)
    check: dict[str, Any] = field(default_factory=dict)  # edidub check of the new bundle on held-back frames


def work_folder(out: str | Path) -> Path:
    """Where an adaptation into ``out`` keeps its resumable state: ``.<name>.adapt`` beside it."""
    out = Path(out)
    return out.parent / f".{out.name}.adapt"


def held_back_range(start: int, end: int) -> tuple[int, int, int, int]:
    """``(train_start, split, judge, end)``: the last fifth of ``[start, end)`` (25 to 75 frames) is held back,
    ``[split, judge)`` to choose checkpoints on and ``[judge, end)`` for the final verdict."""
    n = end - start
    held = min(75, max(25, round(0.2 * n)))
    if n - held < 50:
        raise InvalidArgumentError(f"frames {start}-{end - 1} are too short to adapt on ({n} frames)",
                                   hint=f"give at least {MIN_ADAPT_TAKE_FRAMES} frames (3 s at 25 fps) of the actor speaking")
    return start, end - held, end - held + held // 2, end


@dataclass
class _Held:
    name: str
    crops: np.ndarray  # [N, s, s, 3] at the LSD size
    masks: np.ndarray
    units: np.ndarray
    hr: np.ndarray  # [N, S, S, 3] at the SRD size: what the SRD restores
    hr_masks: np.ndarray
    frames: np.ndarray  # [N] each entry's frame, from the stretch's start (frames without a face are left out)

    def split(self, at: int) -> tuple[_Held, _Held]:
        """The entries before frame ``at`` of the stretch and those from it on."""
        first = self.frames < at
        return tuple(_Held(self.name, self.crops[m], self.masks[m], self.units[m], self.hr[m], self.hr_masks[m], self.frames[m])
                     for m in (first, ~first))


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
    from edidub_engine.face import lower_face_mask, warp_crop
    from edidub_engine.media import iter_frames
    from edidub_engine.render.track import crop_matrix

    size, wanted, hr, hr_masks = renderer.pipeline.srd_size, set(ok), [], []
    for index, frame in iter_frames(info, start, end):
        if index - start in wanted:
            matrix = crop_matrix(track.matrices[index - start], size)
            hr.append(warp_crop(frame, matrix, size))
            hr_masks.append(lower_face_mask(track.landmarks[index - start], matrix, size) > 0.5)
    return _Held(info.path.name, track.crops[ok], track.masks[ok], units[ok], np.stack(hr), np.stack(hr_masks), np.array(ok))


def _validate(renderer, held: Sequence[_Held]) -> float:
    """Mean PSNR inside the mask of the own-speech round trip over the held-back stretches (fixed seed)."""
    from edidub_engine.evaluation.metrics import psnr

    pipeline = renderer.pipeline
    figures = []
    for h in held:
        out = pipeline.lip_sync(h.crops, h.masks, h.units, h.units, settings=replace(pipeline.settings, seed=0))
        figures.append(psnr(out, h.crops, np.repeat(h.masks.astype(bool)[..., None], 3, axis=-1)))
    return float(np.mean(figures))


def _validate_srd(renderer, held: Sequence[_Held], mode: str = "srd") -> float:
    """Mean PSNR inside the mask of the held-back high-res crops restored from their own low-res crops (``mode``
    "bicubic": the baseline an SRD must beat)."""
    from edidub_engine.evaluation.metrics import psnr

    pipeline = renderer.pipeline
    figures = []
    for h in held:
        out = pipeline.restore(h.hr, h.hr_masks, h.crops, seed=0, mode=mode, settings=pipeline.settings)
        figures.append(psnr(out, h.hr, np.repeat(h.hr_masks[..., None], 3, axis=-1)))
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
    from edidub_engine.files import write_json_atomically
    from edidub_engine.media import probe_video
    from edidub_engine.models.bundle import read_bundle, resolve_bundle
    from edidub_engine.render import LoadedModels, ShotRenderer

    from .config import TrainConfig
    from .prepare import file_sha256, prepare_dataset

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
    held, judged, used, spans, spans_judged = [], [], [], [], []
    for clip in clips:
        clip_info = probe_video(clip.path)
        end = clip_info.frame_count if clip.end is None else min(int(clip.end), clip_info.frame_count)
        if not 0 <= clip.start < end:
            raise InvalidArgumentError(f"{clip_info.path.name}: frames {clip.start}-{end - 1} are outside the clip "
                                       f"({clip_info.frame_count} frames)")
        first, split, judge, last = held_back_range(int(clip.start), end)
        say(f"clip {clip_info.path.name}: training on frames {first}-{split - 1}, choosing weights on {split}-{judge - 1}, "
            f"judging them on {judge}-{last - 1}")
        choose, judge_on = _held_back(renderer, clip_info, split, last).split(judge - split)  # tracked and heard as one stretch
        held.append(choose)
        judged.append(judge_on)
        spans.append((clip_info, first, split))
        spans_judged.append((clip_info.path, judge, last))
        used.append({"path": str(clip_info.path), "sha256": file_sha256(clip_info.path), "train_frames": [first, split],
                     "selection_frames": [split, judge], "verdict_frames": [judge, last]})
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

    # ---- the runs: each network with its own base training settings, fine-tuning from its weights
    lsd_config = _fine_tune_config(info.lsd_dir, TrainConfig(task="lsd", model_preset="lsd-tiny"), steps=int(steps) if steps else None,
                                   lr=lr, validate_every=validate_every, overrides=overrides)
    srd_config = _fine_tune_config(info.srd_dir, None, steps=max(1, int(steps) // 4) if steps else None, lr=lr,
                                   validate_every=validate_every, overrides=overrides)
    state = json.loads(state_path.read_text(encoding="utf-8")) if resume else {}
    if state and state.get("base_sha256") != base_sha:
        raise InvalidArgumentError("the stopped adaptation started from another base bundle", hint=f"remove {work} to start over")
    if state and "verdict_before_db" not in state.get("lsd", {}):
        raise InvalidArgumentError(f"{work} was left by an older EdiDub", hint=f"remove {work} to start over")
    if not state:
        before, verdict_before = _validate(renderer, held), _validate(renderer, judged)
        say(f"base {info.name} {info.version}: validation {before:.2f} dB inside the mask (own-speech round trip; "
            f"{verdict_before:.2f} dB on the verdict frames)")
        state = {"base_sha256": base_sha, "lsd": _net_state(before, verdict_before)}
        if srd_config is not None:
            srd_before, bicubic = _validate_srd(renderer, held), _validate_srd(renderer, judged, "bicubic")
            srd_verdict_before = _validate_srd(renderer, judged)
            say(f"base SRD: {srd_before:.2f} dB inside the mask on the held-back crops ({srd_verdict_before:.2f} dB on the "
                f"verdict frames, bicubic {bicubic:.2f} dB)")
            state["srd"] = {**_net_state(srd_before, srd_verdict_before), "bicubic_db": bicubic}
        write_json_atomically(state_path, state)
    total_s = None if minutes is None else 60.0 * float(minutes)
    common = dict(state=state, state_path=state_path, validate_every=validate_every, patience=patience, device=device, say=say,
                  should_cancel=should_cancel)
    lsd = renderer.pipeline.lsd
    _fine_tune("lsd", lsd, run=work / "run", config=lsd_config, dataset=work / "dataset", validate=lambda: _validate(renderer, held),
               seconds=None if total_s is None else 0.75 * total_s,
               on_step=None if on_step is None else (lambda done, total: on_step(done, total)), **common)
    if srd_config is not None and state["lsd"]["stopped"] != "cancelled":
        left = None if total_s is None else max(0.0, total_s - float(state["lsd"]["seconds"]))
        _fine_tune("srd", renderer.pipeline.srd, run=work / "run-srd", config=srd_config, dataset=work / "dataset",
                   validate=lambda: _validate_srd(renderer, held), seconds=left, on_step=None, **common)
    if any(state.get(net, {}).get("stopped") == "cancelled" for net in ("lsd", "srd")):
        raise CancelledError(f"adaptation cancelled at step {state['lsd']['step']}; --resume continues it")

    # ---- the verdict: the weights chosen on the selection frames against the base's, on frames no choice was made on
    from edidub_engine.render import SRD_MARGIN_DB

    base_models = LoadedModels.load(info.path)
    own, seconds = state["lsd"], sum(float(state.get(net, {}).get("seconds", 0.0)) for net in ("lsd", "srd"))
    lsd_wins = _judge(lsd, work / "best-lsd.pt", own, lambda: _validate(renderer, judged), base_models.lsd, SRD_MARGIN_DB,
                      stored=info.lsd_dir / WEIGHTS_NAME)
    verdict = own["verdict"]
    after_db = verdict["adapted_db"] if lsd_wins else verdict["base_db"]
    say(f"LSD verdict: {_verdict_line(verdict)}")
    adaptation = {
        "made_from": "the user's own footage of the actor (not redistributable with the bundle unless its rights allow)",
        "base": {"name": info.name, "version": info.version, "sha256": base_sha},
        "clips": used, "steps": int(own["step"]), "best_step": int(own["best_step"]) if lsd_wins else 0, "seconds": round(seconds, 1),
        "device": str(next(lsd.parameters()).device), "stopped": own["stopped"],
        "validation": {"metric": "own-speech round trip, PSNR inside the lower-face mask at the LSD size, on the verdict frames "
                                 "(held back, and not used to choose the weights)",
                       "before_db": round(float(verdict["base_db"]), 3), "after_db": round(float(after_db), 3),
                       "margin_db": SRD_MARGIN_DB, "history": own["history"],
                       "selection": {"before_db": round(float(own["before_db"]), 3), "best_db": round(float(own["best_db"]), 3),
                                     "best_step": int(own["best_step"]), "adapted_on_verdict_db": _round(verdict["adapted_db"])}},
        "config": {k: v for k, v in lsd_config.to_dict().items() if k in ("lr", "batch_size", "window_frames", "size", "ema_decay")},
    }
    if not lsd_wins:  # the bundle dubs as the base does
        adaptation["kept"] = f"the base's LSD: {_verdict_line(verdict)}"
    srd = None
    if "srd" in state:
        mine = state["srd"]
        srd_wins = _judge(renderer.pipeline.srd, work / "best-srd.pt", mine, lambda: _validate_srd(renderer, judged), base_models.srd,
                          SRD_MARGIN_DB, stored=info.srd_dir / WEIGHTS_NAME)
        say(f"SRD verdict: {_verdict_line(mine['verdict'])}")
        if srd_wins:
            srd = renderer.pipeline.srd
            adaptation["srd"] = {"steps": int(mine["step"]), "best_step": int(mine["best_step"]), "stopped": mine["stopped"],
                                 "validation": {"metric": "PSNR inside the lower-face mask of the verdict frames' high-res crops, "
                                                          "restored from their own low-res crops",
                                                "before_db": round(float(mine["verdict"]["base_db"]), 3),
                                                "after_db": round(float(mine["verdict"]["adapted_db"]), 3),
                                                "bicubic_db": round(float(mine["bicubic_db"]), 3), "margin_db": SRD_MARGIN_DB,
                                                "history": mine["history"]}}
        else:
            adaptation["srd"] = {"kept": f"the base's SRD: {_verdict_line(mine['verdict'])}",
                                 "steps": int(mine["step"]), "history": mine["history"]}
    # Whether a dub runs this LSD on the moved mouths (render.lsd_verdict): the base's LSD keeps the base's verdict; a new one
    # is measured on the verdict frames, as `edidub check` measures a bundle (without it, an adapted LSD would run unchecked).
    mouths = _mouths_verdict(renderer, spans_judged[0], say) if lsd_wins else None
    # A new SRD needs a new verdict (is it worth running, at its stage and end to end?): measured on the verdict frames. The
    # base's SRD keeps the base's verdict, measured on clips it never saw (and a check costs about a minute on a CPU).
    bundle = _write_bundle(info, lsd, out, name=name or f"{info.name}-{Path(clips[0].path).stem}", adaptation=adaptation, srd=srd,
                           mouths=mouths, check=None if srd is None else (lambda folder: _check_adapted(folder, spans_judged[0], say)))
    shutil.rmtree(work, ignore_errors=True)
    card = json.loads((bundle / "model_card.json").read_text(encoding="utf-8"))
    return AdaptResult(bundle=bundle, steps=int(own["step"]), seconds=seconds, before_db=float(verdict["base_db"]),
                       best_db=float(after_db), best_step=int(adaptation["best_step"]), history=own["history"], stopped=own["stopped"],
                       srd=adaptation.get("srd") or {}, check=card.get("check") or {})


def _net_state(before: float, verdict_before: float) -> dict[str, Any]:
    return {"before_db": before, "best_db": before, "best_step": 0, "step": 0, "seconds": 0.0, "stopped": "",
            "verdict_before_db": verdict_before, "history": [{"step": 0, "validation_db": before}]}


def _judge(model, best_path: Path, own: dict[str, Any], measure: Callable[[], float], base_model, margin_db: float, *,
           stored: Path) -> bool:
    """Whether the weights chosen on the selection frames (``best_path``; absent when none beat the base there) replace
    the base's: only if ``measure()`` on the verdict frames beats the base's figure there by ``margin_db``, with the
    weights rounded as the bundle stores them (the base's file ``stored``). ``model`` is left holding the weights that
    win; the figures go to ``own["verdict"]``."""
    import torch

    base_db, adapted_db = float(own["verdict_before_db"]), None
    if best_path.is_file():
        dtypes = _stored_dtypes(stored)
        best = torch.load(best_path, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.to(dtypes[k]).to(v.dtype) if k in dtypes else v for k, v in best.items()})
        adapted_db = measure()
    wins = adapted_db is not None and adapted_db >= base_db + margin_db
    if not wins:
        model.load_state_dict(base_model.state_dict())
    own["verdict"] = {"base_db": base_db, "adapted_db": adapted_db, "margin_db": margin_db, "replaces_base": wins}
    return wins


def _verdict_line(verdict: dict[str, Any]) -> str:
    if verdict["adapted_db"] is None:
        return "no fine-tuned weights beat it on the selection frames"
    figures = f"{verdict['adapted_db']:.2f} dB against the base's {verdict['base_db']:.2f} dB on the verdict frames"
    if verdict["replaces_base"]:
        return f"the fine-tuned weights replace the base's ({figures})"
    return f"the fine-tuned weights chosen on the selection frames gave {figures}, short of the {verdict['margin_db']} dB margin"


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _fine_tune_config(network_dir: Path, fallback, *, steps: int | None, lr: float | None, validate_every: int, overrides):
    """The network's own training settings from its card, turned into a fine-tune from its weights (None: no card
    and no fallback, so this network is not adapted)."""
    from .config import TrainConfig

    card_path = network_dir / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    trained = {k: v for k, v in ((card.get("training") or {}).get("config") or {}).items() if k != "format"}
    if not trained and fallback is None:
        return None
    base = TrainConfig.from_dict(trained) if trained else fallback
    budget = steps or 1_000_000
    rate = float(lr) if lr else min(base.lr, 2e-4)  # fine-tuning: a tenth of the starter's peak, constant after a warm-up
    settings = {"init_from": str(network_dir), "steps": budget, "lr": rate, "min_lr": rate, "warmup_steps": min(50, budget),
                "checkpoint_every": validate_every, "keep_checkpoints": 2, "log_every": max(1, validate_every // 4),
                "ema_decay": min(base.ema_decay, 0.99)}
    return replace(base, **{**settings, **(overrides or {})})


def _fine_tune(net: str, model, *, run: Path, config, dataset: Path, validate: Callable[[], float], seconds: float | None,
               state: dict[str, Any], state_path: Path, validate_every: int, patience: int, device, say, should_cancel, on_step) -> None:
    """Train ``model`` in chunks of ``validate_every`` steps from where ``state[net]`` stands, validating after each and
    keeping the best weights in ``best-<net>.pt``; records in ``state[net]["stopped"]`` why it stopped."""
    import torch

    from edidub_engine.files import write_json_atomically

    from .config import CONFIG_NAME
    from .trainer import latest_checkpoint, train

    own = state[net]
    if own["stopped"]:
        return
    best_path = run.parent / f"best-{net}.pt"
    started = time.perf_counter() - float(own["seconds"])
    pace = None  # seconds per step of the last chunk, its validation included: sizes the next chunk to the time left
    while True:
        step = int(own["step"])
        left = None if seconds is None else seconds - (time.perf_counter() - started)
        if step >= config.steps:
            stopped = f"reached {config.steps} steps"
        elif left is not None and (left <= 0 or (pace is not None and left < pace)):
            stopped = f"reached its {seconds / 60:.1f}-minute share of the budget"
        elif (step - int(own["best_step"])) // validate_every >= patience:
            stopped = f"no better validation for {patience} checks"
        elif should_cancel is not None and should_cancel():
            stopped = "cancelled"
        else:
            stopped = ""
        if stopped:
            own["stopped"] = stopped if stopped != "cancelled" else ""
            write_json_atomically(state_path, state)
            if stopped == "cancelled":
                own["stopped"] = "cancelled"
            return
        target = min(config.steps, step + validate_every)
        if left is not None and pace is not None:  # a whole chunk would overrun the budget: as many steps as fit
            target = min(target, step + int(left / pace))
        chunk_started = time.perf_counter()
        fresh = not (run / CONFIG_NAME).is_file()
        train(dataset if fresh else None, run, config if fresh else None, resume=not fresh, until_step=target, device=device,
              progress=False, command=["edidub", "adapt"], data_licence="the production's own footage of the actor (user-supplied)")
        _load_ema(latest_checkpoint(run), model)
        figure = validate()
        pace = (time.perf_counter() - chunk_started) / (target - step)
        own["history"].append({"step": target, "validation_db": figure})
        if figure > float(own["best_db"]):
            torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, best_path)
            own["best_db"], own["best_step"] = figure, target
        own["step"], own["seconds"] = target, time.perf_counter() - started
        write_json_atomically(state_path, state)
        say(f"{net.upper()} step {target}: validation {figure:.2f} dB (best {own['best_db']:.2f} at step {own['best_step']}, "
            f"base {own['before_db']:.2f})")
        if on_step is not None:
            on_step(target, config.steps if config.steps < 1_000_000 else 0)


def _check_adapted(bundle: Path, held: tuple, say) -> None:
    """``edidub check`` on the held-back stretch of the first take, written into the card: what ``--restore auto``
    decides from (the adapted SRD runs only if it beats bicubic at its stage and end to end)."""
    from edidub_engine.evaluation.check import check_bundle, write_check_into_card

    path, start, end = held
    summary = check_bundle(bundle, [str(path)], start=start, frames=min(end - start, 25))
    summary["measured_on"] = f"frames {start}-{start + min(end - start, 25) - 1} of {Path(path).name}, held back from the adaptation"
    write_check_into_card(bundle, summary)
    whole = summary.get("end_to_end") or {}
    say(f"check on held-back frames: end to end {whole.get('lower_face_db', float('nan')):.2f} dB, restores with {whole.get('restore')}")


def _mouths_verdict(renderer, held: tuple, say) -> dict[str, Any] | None:
    """The card's ``check.mouths`` for an adapted LSD, measured on a take's verdict frames ``(path, start, end)``
    (None where too few of them show the face: the bundle is then unchecked there, as a bundle never checked)."""
    from edidub_engine.evaluation.check import _track, mouth_figures

    path, start, end = held
    try:
        figures = mouth_figures(renderer, _track(renderer.pipeline, path, start, end - start))
    except NoFaceError as error:
        say(f"moved mouths: not measured ({error}); run `edidub check` on this bundle before dubbing with it")
        return None
    mouths = {"moved_db": round(figures["mouths_moved_db"], 2), "lsd_db": round(figures["mouths_lsd_db"], 2),
              "measured_on": f"frames {start}-{end - 1} of {Path(path).name}, held back from the adaptation"}
    say(f"moved mouths: {mouths['moved_db']:.2f} dB alone, {mouths['lsd_db']:.2f} dB after the adapted LSD's edit")
    return mouths


def _write_bundle(info, lsd, out: Path, *, name: str, adaptation: dict[str, Any], srd=None, mouths: dict[str, Any] | None = None,
                  check: Callable[[Path], None] | None = None) -> Path:
    """The base bundle's files with the adapted weights (the LSD, and the SRD when it was adapted) and cards, checked by
    ``check(folder)`` before it is published atomically at ``out``. ``mouths``: the adapted LSD's verdict on moved mouths
    (None: the base's LSD was kept, and so is its verdict)."""
    from edidub_engine.models.bundle import read_bundle, write_bundle_manifest

    from .export import _publish_dir

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        shutil.copytree(info.path, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        cards = {"lsd": _save_weights(tmp / "lsd", lsd, adaptation)}
        if srd is not None:
            cards["srd"] = _save_weights(tmp / "srd", srd, adaptation["srd"])
        card = json.loads((tmp / "model_card.json").read_text(encoding="utf-8"))
        base_check = card.pop("check", None) or {}
        if "srd" in base_check and srd is None:  # the base's SRD: its verdict holds until the check below measures this bundle
            whole = {k: v for k, v in (base_check.get("end_to_end") or {}).items() if k in ("restore", "with_srd_db", "with_bicubic_db")}
            card["check"] = {"srd": base_check["srd"], "end_to_end": whole,
                             "measured_on": f"{info.name} {info.version} (the same SRD); run `edidub check` for this LSD's figures"}
        kept_mouths = base_check.get("mouths") if mouths is None and "kept" in adaptation else None
        if mouths is not None or kept_mouths:  # whether a dub runs the LSD on moved mouths (render.lsd_verdict)
            card.setdefault("check", {})["mouths"] = mouths or {**kept_mouths, "measured_on": f"{info.name} {info.version} (the same LSD)"}
        card.update({"name": name, "description": f"{info.name} adapted to an actor's own footage ({len(adaptation['clips'])} clip(s))",
                     **cards, "adaptation": adaptation})
        write_bundle_manifest(tmp, name=name, version="1", frontend=info.frontend, card=card, defaults=info.defaults)
        if check is not None:
            check(tmp)
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out).path


def _stored_dtypes(weights: Path) -> dict[str, Any]:
    """Each tensor's dtype in a network's weights file: the base's storage precision (fp16 for the starter)."""
    from safetensors.torch import load_file

    return {k: v.dtype for k, v in load_file(weights).items()}


def _save_weights(folder: Path, model, adaptation: dict[str, Any]) -> dict[str, Any]:
    """``model``'s weights over the base's in ``folder`` (in the base's storage precision), and its card saying so."""
    import torch
    from safetensors.torch import save_file

    from .export import _sha256

    weights = folder / WEIGHTS_NAME
    dtypes = _stored_dtypes(weights)
    state = model.state_dict()
    save_file({k: state[k].detach().to("cpu", dtypes.get(k, torch.float32)).contiguous() for k in dtypes}, weights)
    card_path = folder / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card["adaptation"] = adaptation
    card.setdefault("model", {}).setdefault("weights", {})["sha256"] = _sha256(weights)
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return card


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
        if shot.source.end_frame - shot.source.start_frame < MIN_ADAPT_TAKE_FRAMES:
            say(f"left out {name}: {shot.source.end_frame - shot.source.start_frame} frames, fewer than the {MIN_ADAPT_TAKE_FRAMES} adaptation needs")
            continue
        clips.append(AdaptClip(Path(shot.source.path), shot.source.start_frame, shot.source.end_frame))
    if not clips:
        raise InvalidArgumentError(f"no clip of {Path(path).name} matches {clip_name!r} with {MIN_ADAPT_TAKE_FRAMES} frames or more",
                                   hint="name the actor's clips in the cut with a common pattern (e.g. ANNA_*) and pass it as --clip-name")
    return clips


def eta_s(done: int, total: int, seconds: float) -> float | None:
    """Seconds left at the present pace, or None when no step is done or there is no step budget."""
    return None if done <= 0 or total <= 0 else seconds / done * max(0, total - done)

