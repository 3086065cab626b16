"""The training loop of LSD and SRD (paper §3.1, §3.2, §4.2, appendix B.2): :func:`train`.

One run lives in one folder::

    RUN_DIR/config.json                 the TrainConfig (written on the first start, read on resume)
    RUN_DIR/train.log                   human-readable log (rank 0)
    RUN_DIR/metrics.jsonl               one JSON line per logged step: step, loss, lr, steps_per_s
    RUN_DIR/checkpoints/step-00001000/  state.pt: model, EMA, optimizer, LR schedule, step, RNG states
    RUN_DIR/checkpoints/latest          name of the newest complete checkpoint
    RUN_DIR/model/                      the export: diffusers layout (EMA weights) + model_card.json

**Exact resume.** Nothing that decides a step's result depends on the process's history:
the samples of step ``s`` are a pure function of ``(seed, s)`` (a seeded permutation per
data epoch, the global batch cut into per-rank slices; augmentations are the dataset's own
per-``(seed, epoch, index)`` draws), and the diffusion draws of step ``s`` (timesteps,
noise, classifier-free dropout) come from a generator seeded by ``(seed, s, rank)``. A
checkpoint holds the rest — weights, EMA, AdamW moments, LR schedule position, global RNG
states — so on a CPU, ``N`` steps straight and ``N/2`` + resume + ``N/2`` give identical
weights (tested). Checkpoints publish atomically: written to a hidden temp folder, then
renamed, then ``latest`` is replaced.

**Multi-GPU.** Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
DistributedDataParallel (nccl on GPUs, gloo on CPUs); ``batch_size`` is the global batch,
split evenly; only rank 0 writes. ``bf16`` autocasts the forward pass on CUDA or the CPU (the loss is
taken in float32); the paper trains without mixed precision.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edidub_engine.errors import InvalidArgumentError, OutputExistsError

from edidub_engine.files import write_json_atomically, write_text_atomically

from .config import CONFIG_NAME, Task, TrainConfig, load_train_config
from .export import export_model

__all__ = [
    "TrainResult",
    "WindowBatchSampler",
    "build_dataset",
    "lr_at",
    "make_denoiser",
    "train",
]

CHECKPOINTS = "checkpoints"
LATEST = "latest"
STATE_NAME = "state.pt"
EXPORT_DIR = "model"
_LOSS_WINDOW = 100  # the card's "final loss" is the mean training loss of the last this-many steps

log = logging.getLogger("edidub.train")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the run folder, the step reached, the export (``None`` when stopped early)."""

    run_dir: Path
    step: int
    steps_total: int
    final_loss: float | None
    wall_time_s: float
    export_dir: Path | None
    checkpoint: Path | None


# ---------------------------------------------------------------------- schedule
def lr_at(config: TrainConfig, step: int) -> float:
    """The learning rate of update ``step`` (0-based): linear warm-up from 0, then cosine from ``lr`` to ``min_lr``."""
    if config.warmup_steps > 0 and step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    span = max(config.steps - config.warmup_steps, 1)
    progress = min(max(step - config.warmup_steps, 0) / span, 1.0)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1.0 + math.cos(math.pi * progress))


def _seed_of(*parts: int) -> int:
    state = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


# ---------------------------------------------------------------------- data
class WindowBatchSampler(torch.utils.data.Sampler):
    """Yields, for steps ``start_step`` … ``steps - 1``, this rank's ``[(epoch, index), …]``.

    The sample stream is the concatenation of per-epoch permutations of the dataset
    (``torch.randperm`` seeded by ``(seed, epoch)``); step ``s`` takes stream positions
    ``[s·B, (s+1)·B)`` (``B`` = the global batch) and rank ``r`` of ``W`` the ``r``-th of
    ``W`` equal slices — a pure function of the step, so a resumed run sees the same data.
    """

    def __init__(self, length: int, *, batch_size: int, seed: int, steps: int, start_step: int = 0, rank: int = 0, world_size: int = 1):
        if length < 1:
            raise InvalidArgumentError("the dataset offers no training window", hint="prepare more footage or shorten window_frames")
        if batch_size % world_size:
            raise InvalidArgumentError(f"batch_size {batch_size} does not split over {world_size} processes")
        self.length, self.batch_size, self.seed = int(length), int(batch_size), int(seed)
        self.steps, self.start_step, self.rank, self.world_size = int(steps), int(start_step), int(rank), int(world_size)
        self._perm: tuple[int, torch.Tensor] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(_seed_of(self.seed, 0x5A3D, epoch))
            self._perm = (epoch, torch.randperm(self.length, generator=g))
        return self._perm[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        local = self.batch_size // self.world_size
        first = step * self.batch_size + self.rank * local
        out = []
        for pos in range(first, first + local):
            epoch, offset = divmod(pos, self.length)
            out.append((epoch, int(self._permutation(epoch)[offset])))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.steps):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(self.steps - self.start_step, 0)


class _EpochIndexed(torch.utils.data.Dataset):
    """``dataset[(epoch, index)]``: the item of ``index`` with the augmentation draws of ``epoch``."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


def build_dataset(config: TrainConfig, data_dir: str | os.PathLike):
    """The task's window dataset over a prepared dataset folder, at ``config.size`` (resampled from larger stored crops when needed)."""
    from .dataset import LipSyncWindowDataset, SuperResWindowDataset
    from .prepare import CROP_SIZES, read_manifest

    sizes = tuple(read_manifest(data_dir)["settings"].get("crop_sizes", CROP_SIZES))
    larger = sorted(s for s in sizes if s >= config.size)
    if not larger:
        raise InvalidArgumentError(f"the dataset's crops ({', '.join(map(str, sizes))} px) are smaller than size {config.size}")
    source = config.size if config.size in sizes else larger[0]
    common = dict(window_frames=config.window_frames, size=config.size, flip=config.flip, seed=config.seed,
                  stride=config.stride, source_size=source)
    if config.task is Task.LSD:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exclusion-window note is the prepare step's business; logged below
            return LipSyncWindowDataset(data_dir, **common)
    return SuperResWindowDataset(data_dir, low_res_range=config.low_res_range, prev_frame_prob=config.prev_frame_prob, **common)


# ---------------------------------------------------------------------- model glue
def make_denoiser(model: torch.nn.Module, task: Task | str, *, autocast: contextlib.AbstractContextManager | None = None):
    """The diffusion code's denoiser for ``model``: input ``[x_t, condition, mask]`` (7 channels), ε out in float32.

    ``condition`` is ``cond["reference"]`` for LSD and ``cond["low_res"]`` for SRD.
    """
    key = "reference" if Task(task) is Task.LSD else "low_res"

    def denoise(x_t: torch.Tensor, timestep: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        with autocast or contextlib.nullcontext():
            out = model(torch.cat([x_t, cond[key], cond["mask"]], dim=1), timestep, units=cond.get("units")).sample
        return out.float()

    return denoise


class _EMA:
    """Exponential moving average of a model's floating-point parameters and buffers (kept in float32)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = float(decay)
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items() if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1.0 - d)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)

    def copy_to(self, model: torch.nn.Module) -> None:
        own = model.state_dict()
        model.load_state_dict({k: (self.shadow[k].to(v.dtype) if k in self.shadow else v) for k, v in own.items()})


# ---------------------------------------------------------------------- distributed
@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def _pick_device(requested: str | None, dist_local_rank: int) -> torch.device:
    if requested:
        device = torch.device(requested)
    else:
        device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", dist_local_rank if torch.cuda.device_count() > dist_local_rank else 0)
    return device


# ---------------------------------------------------------------------- checkpoints
def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run, or ``None``."""
    root = Path(run_dir) / CHECKPOINTS
    pointer = root / LATEST
    if pointer.is_file():
        candidate = root / pointer.read_text(encoding="utf-8").strip()
        if (candidate / STATE_NAME).is_file():
            return candidate
    found = sorted(p for p in root.glob("step-*") if (p / STATE_NAME).is_file()) if root.is_dir() else []
    return found[-1] if found else None


def _rng_states(device: torch.device) -> dict[str, Any]:
    import random

    states: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    import random

    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def _save_checkpoint(run_dir: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    root = run_dir / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / STATE_NAME)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_text_atomically(root / LATEST, final.name + "\n")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".step-*.partial-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    return final


# ---------------------------------------------------------------------- logging
def _setup_log(run_dir: Path, enabled: bool) -> logging.Handler | None:
    if not enabled:
        return None
    handler = logging.FileHandler(run_dir / "train.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


# ---------------------------------------------------------------------- the loop
def train(
    data_dir: str | os.PathLike | None,
    run_dir: str | os.PathLike,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    steps: int | None = None,
    until_step: int | None = None,
    device: str | None = None,
    progress: bool = True,
    command: Sequence[str] | None = None,
    data_licence: str | None = None,
) -> TrainResult:
    """Train (or resume) one model; on reaching ``config.steps`` export it to ``RUN_DIR/model``.

    :param data_dir: the prepared dataset (``edidub prepare``); on resume ``None`` takes the
        one recorded in the run.
    :param config: the run's settings; required for a new run; on resume the saved
        ``config.json`` is used (a different ``config`` is an error).
    :param resume: continue from the newest checkpoint of ``run_dir``.
    :param steps: on resume, a new total number of steps (the cosine schedule is then
        stretched from that point on, so the result differs from a run planned that long).
    :param until_step: stop (with a checkpoint, without export) once this step is reached;
        a later ``resume`` continues exactly.
    :param command: the command line recorded in the model card (default ``sys.argv``).
    :param data_licence: a note on the training footage's licence for the model card.
    """
    run_dir = Path(run_dir).expanduser()
    torch_device = _pick_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    dist_info = _init_distributed(torch_device)
    command = list(command) if command is not None else [Path(sys.argv[0]).name, *sys.argv[1:]]

    # ---- the run's config and provenance
    meta_path = run_dir / "run.json"
    if resume:
        if not (run_dir / CONFIG_NAME).is_file():
            raise InvalidArgumentError(f"{run_dir} holds no training run to resume ({CONFIG_NAME} missing)")
        saved = load_train_config(run_dir)
        if config is not None and config != saved:
            raise InvalidArgumentError("--resume continues with the run's own config.json; it differs from the config given",
                                       hint="drop --config/--set when resuming (only --steps may change)")
        config = saved
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if data_dir is not None and Path(data_dir).expanduser().resolve() != Path(meta["data_dir"]):
            raise InvalidArgumentError(f"the run was trained on {meta['data_dir']}, not {data_dir}")
        data_dir = meta["data_dir"]
        if steps is not None and steps != config.steps:
            import dataclasses

            config = dataclasses.replace(config, steps=int(steps))
    else:
        if config is None or data_dir is None:
            raise InvalidArgumentError("a new run needs a config and a dataset")
        if steps is not None:
            import dataclasses

            config = dataclasses.replace(config, steps=int(steps))
        if (run_dir / CONFIG_NAME).exists():
            raise OutputExistsError(f"{run_dir} already holds a training run", hint="pass --resume to continue it, or choose another -o folder")
        meta = {"data_dir": str(Path(data_dir).expanduser().resolve()), "command": command, "data_licence": data_licence}
    if data_licence is not None:
        meta["data_licence"] = data_licence
    if until_step is not None and not 0 < until_step <= config.steps:
        raise InvalidArgumentError(f"until_step must be in [1, {config.steps}]")
    stop_at = config.steps if until_step is None else int(until_step)

    dataset = build_dataset(config, data_dir)
    num_units = dataset.vocabulary_size if config.task is Task.LSD else None
    if config.init_from:  # fine-tuning: the network is the one in that folder, whatever the preset says
        from edidub_engine.models import load_model

        init = load_model(config.init_from).float()
        model_config = init.config
        if int(init.config.sample_size) != config.size:
            raise InvalidArgumentError(f"{config.init_from} is a {init.config.sample_size} px network; the run trains at {config.size} px")
    else:
        init, model_config = None, config.model_config(num_units=num_units)
    if config.task is Task.LSD and model_config.num_units != dataset.vocabulary_size:
        raise InvalidArgumentError(f"the network's unit table has {model_config.num_units} rows; the dataset's codebook needs {dataset.vocabulary_size}")

    if dist_info.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            config.save(run_dir / CONFIG_NAME)
        elif steps is not None:
            config.save(run_dir / CONFIG_NAME)
        write_json_atomically(meta_path, meta)
    handler = _setup_log(run_dir, dist_info.main)

    # ---- model, EMA, optimiser, schedule
    from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion, null_cond_for, to_residual
    from edidub_engine.models import build_model

    torch.manual_seed(_seed_of(config.seed, 0x11))
    model = (init if init is not None else build_model(model_config)).to(torch_device)
    ema = _EMA(model, config.ema_decay)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)  # norms and biases are not decayed (the AdamW custom)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=config.betas, eps=config.adam_eps,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(config, s) / config.lr)
    process = MaskedDiffusion(config=DiffusionConfig(train_steps=config.train_timesteps, schedule=config.schedule,
                                                     cond_drop_prob=config.cond_drop_prob))

    start_step, wall_before, loss_history = 0, 0.0, []
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None and dist_info.main:  # killed before its first checkpoint: start over, same config
        log.info("no checkpoint in %s: starting from step 0", run_dir)
    if checkpoint is not None:
        state = torch.load(checkpoint / STATE_NAME, map_location=torch_device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if steps is not None:  # a new total: the schedule's function changed, its position did not
            scheduler.lr_lambdas[0] = lambda s: lr_at(config, s) / config.lr
            for group in optimizer.param_groups:
                group["lr"] = lr_at(config, state["step"])
        start_step, wall_before = int(state["step"]), float(state["wall_time_s"])
        loss_history = list(state["loss_history"])
        _set_rng_states(state["rng"][min(dist_info.rank, len(state["rng"]) - 1)], torch_device)
        del state

    train_model: torch.nn.Module = model
    if dist_info.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[torch_device.index] if torch_device.type == "cuda" else None)

    sampler = WindowBatchSampler(len(dataset), batch_size=config.batch_size, seed=config.seed, steps=stop_at,
                                 start_step=start_step, rank=dist_info.rank, world_size=dist_info.world_size)
    loader = torch.utils.data.DataLoader(_EpochIndexed(dataset), batch_sampler=sampler, num_workers=config.num_workers,
                                         pin_memory=torch_device.type == "cuda", persistent_workers=False)
    # bf16 autocast on CUDA, and on a CPU too (AMX/AVX-512-BF16 CPUs train about twice as fast)
    autocast = torch.autocast(torch_device.type, dtype=torch.bfloat16) if config.bf16 and torch_device.type in ("cuda", "cpu") else None
    denoiser = make_denoiser(train_model, config.task, autocast=autocast)
    null_unit = dataset.null_unit if config.task is Task.LSD else None

    if dist_info.main:
        from edidub_engine.models import count_parameters

        log.info("%s %s: %s, %d parameters, %d windows, device %s x%d, steps %d → %d of %d",
                 "resume" if resume else "start", config.task.value, config.model_preset, count_parameters(model), len(dataset),
                 torch_device, dist_info.world_size, start_step, stop_at, config.steps)
        log.info("config %s", json.dumps(config.to_dict(), sort_keys=True))
    bar = None
    if progress and dist_info.main:
        from tqdm.auto import tqdm

        bar = tqdm(total=stop_at, initial=start_step, desc=f"train {config.task.value}", unit="step", dynamic_ncols=True)

    model.train()
    step = start_step
    t0 = time.perf_counter()
    t_log, step_log = t0, start_step
    metrics = None
    if dist_info.main:
        path = run_dir / "metrics.jsonl"
        if path.is_file():  # rows a killed run logged after its last checkpoint are logged again: drop them
            rows = [r for r in path.read_text(encoding="utf-8").splitlines() if r.strip()]
            kept = [r for r in rows if _row_step(r) is not None and _row_step(r) <= start_step]
            write_text_atomically(path, "".join(r + "\n" for r in kept))
        metrics = path.open("a", encoding="utf-8")
    last_checkpoint = checkpoint
    try:
        for batch in loader:
            batch = {k: v.to(torch_device, non_blocking=True) for k, v in batch.items()}
            x0, mask = batch["video"], batch["mask"]
            if config.task is Task.LSD:
                cond = {"reference": batch["reference"], "units": batch["units"]}
                null_cond = null_cond_for(cond, null_unit=null_unit)
            else:
                cond, null_cond = {"low_res": batch["low_res"]}, None
                if config.srd_target == "residual":
                    x0 = to_residual(x0, batch["low_res"], config.residual_scale)
            generator = torch.Generator().manual_seed(_seed_of(config.seed, 0xD1FF, step, dist_info.rank))
            loss = process.loss(denoiser, x0, mask, cond, generator=generator, null_cond=null_cond,
                                cond_drop_prob=config.cond_drop_prob if null_cond is not None else 0.0,
                                max_timestep=config.max_timestep)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            optimizer.step()
            scheduler.step()
            ema.update(model)
            step += 1

            value = loss.detach()
            if dist_info.world_size > 1:
                import torch.distributed as dist

                dist.all_reduce(value)
                value = value / dist_info.world_size
            value = float(value)
            loss_history.append(value)
            loss_history = loss_history[-_LOSS_WINDOW:] if len(loss_history) > 4 * _LOSS_WINDOW else loss_history
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
            if dist_info.main and (step % config.log_every == 0 or step == stop_at):
                now = time.perf_counter()
                rate = (step - step_log) / max(now - t_log, 1e-9)
                t_log, step_log = now, step
                recent = loss_history[-config.log_every:]
                row = {"step": step, "loss": sum(recent) / len(recent), "lr": scheduler.get_last_lr()[0], "steps_per_s": rate}
                metrics.write(json.dumps(row) + "\n")
                metrics.flush()
                log.info("step %d loss %.5f lr %.3e %.2f steps/s", step, row["loss"], row["lr"], rate)
            if step % config.checkpoint_every == 0 or step == stop_at:
                wall = wall_before + time.perf_counter() - t0
                rng = _gather_rng(_rng_states(torch_device), dist_info)
                if dist_info.main:
                    state = {"step": step, "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "rng": rng, "wall_time_s": wall, "loss_history": loss_history[-_LOSS_WINDOW:],
                             "config": config.to_dict()}
                    last_checkpoint = _save_checkpoint(run_dir, step, state, config.keep_checkpoints)
                    log.info("checkpoint %s", last_checkpoint)
    finally:
        if bar is not None:
            bar.close()
        if metrics is not None:
            metrics.close()

    wall = wall_before + time.perf_counter() - t0
    final_loss = sum(loss_history[-_LOSS_WINDOW:]) / len(loss_history[-_LOSS_WINDOW:]) if loss_history else None
    export_dir = None
    if dist_info.main and step >= config.steps:
        first = _first_loss(run_dir)
        export_dir = export_model(
            model, ema, run_dir / EXPORT_DIR, config=config, dataset=dataset, data_dir=Path(data_dir), step=step,
            wall_time_s=wall, final_loss=final_loss, first_loss=first, command=meta.get("command", command),
            resumed_with=command if resume else None, data_licence=meta.get("data_licence"), world_size=dist_info.world_size,
            device=str(torch_device),
        )
        log.info("exported %s (final loss %.5f over the last %d steps, %.1f s)", export_dir, final_loss, min(len(loss_history), _LOSS_WINDOW), wall)
    if handler is not None:
        log.removeHandler(handler)
        handler.close()
    if dist_info.world_size > 1:
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(run_dir=run_dir, step=step, steps_total=config.steps, final_loss=final_loss, wall_time_s=wall,
                       export_dir=export_dir, checkpoint=last_checkpoint)


def _gather_rng(states: dict[str, Any], dist_info: _Dist) -> list[dict[str, Any]]:
    if dist_info.world_size <= 1:
        return [states]
    import torch.distributed as dist

    out: list[Any] = [None] * dist_info.world_size
    dist.all_gather_object(out, states)
    return out


def _row_step(row: str) -> int | None:
    try:
        return int(json.loads(row)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _first_loss(run_dir: Path) -> float | None:
    """The first logged mean loss (metrics.jsonl), for the card."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            return float(json.loads(line)["loss"])
    return None

