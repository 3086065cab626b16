"""Training settings as one typed, frozen :class:`TrainConfig` (saved as ``RUN_DIR/config.json``).

Presets (``train_config(name, **overrides)``):

* ``lsd-paper`` / ``srd-paper``: appendix B.2 table 6 — AdamW, peak learning rate 1e-4
  after a linear warm-up of 10 000 steps, cosine decay to 1e-5, weight decay 0.01, batch
  28, 500 000 steps, EMA of the weights, horizontal flip; LSD on 25-frame 64 px windows,
  SRD on 5-frame 224 px windows with a random low-resolution side in 32–64 and
  predecessor replacement. The EMA decay is lost from our copy of the paper: 0.9999, the
  usual value for runs of hundreds of thousands of steps.
* ``lsd-tiny`` / ``srd-tiny``: the tiny networks (32 px LSD, 64 px SRD) with settings a
  CPU can finish: lr 1e-3, 50 warm-up steps, batch 4, EMA 0.995 (a decay of 0.9999
  averages over ~10 000 steps, longer than a short run; ``1 - decay`` should be
  about 5/steps or larger).
* ``lsd-starter`` / ``srd-starter``: what trained the shipped ``edidub-starter`` bundle
  (see ``scripts/train_starter.sh``); ``lsd-starter-64``: a 64 px LSD tried for it, not shipped.

Loss: both models use eq. 1's masked MSE (§3.2: SRD uses "the same masked-reconstruction
loss"); table 6's "MSE" for SRD is that loss on the lower-face mask. SRD has no speech, so
its classifier-free dropout is 0.

Overrides are keyword arguments (``steps=100``) or, from the command line, ``--set
key=value`` with a JSON value; ``model.<field>=value`` changes one field of the network
(:class:`~edidub_engine.models.UNet3DConfig`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edidub_engine.errors import InvalidArgumentError

__all__ = [
    "CONFIG_NAME",
    "TRAIN_PRESETS",
    "ExportDtype",
    "Task",
    "TrainConfig",
    "apply_overrides",
    "load_train_config",
    "parse_override",
    "train_config",
]

CONFIG_NAME = "config.json"
CONFIG_FORMAT = "edidub-train-config/1"
SRD_TARGETS = ("image", "residual")


class Task(enum.StrEnum):
    LSD = "lsd"
    SRD = "srd"


class ExportDtype(enum.StrEnum):
    """The dtype of exported weights: fp16 halves the files for shipping; fp32 keeps them whole."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Every setting of one training run.

    Steps count optimiser updates; ``batch_size`` is the global batch (split evenly over
    ``torchrun`` processes). ``lr`` rises linearly from 0 over ``warmup_steps``, then follows
    a cosine from ``lr`` down to ``min_lr`` at ``steps``. The EMA decay follows
    ``min(ema_decay, (1 + s) / (10 + s))`` at update ``s`` (so early averages are not
    dominated by the random initialisation). ``num_units`` = ``None`` takes the dataset
    codebook's vocabulary (LSD) — the network's unit table must match the codebook.
    """

    task: Task
    model_preset: str
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    # data (the dataset classes of :mod:`.dataset`)
    window_frames: int = 25
    size: int = 64
    stride: int = 1
    flip: bool = True
    low_res_range: tuple[int, int] = (32, 64)  # SRD only
    prev_frame_prob: float = 0.1  # SRD only
    num_workers: int = 0
    # optimisation (table 6)
    steps: int = 500_000
    batch_size: int = 28
    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_steps: int = 10_000
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    grad_clip_norm: float | None = None  # the paper states none
    ema_decay: float = 0.9999
    # diffusion (table 5 training side)
    train_timesteps: int = 1000
    schedule: str = "squaredcos_cap_v2"  # the cosine schedule of table 5 (diffusers name)
    cond_drop_prob: float = 0.1
    # SRD: train only timesteps below this, the levels a sampler that starts from the noised bicubic
    # upsample (sampling strength < 1) ever visits; None: all of them (the paper's)
    max_timestep: int | None = None
    # SRD: what it diffuses. "image" (the paper's): the high-resolution crop. "residual": the crop minus its
    # bicubic-upsampled low-res condition, times ``residual_scale`` (as SRDiff, Li et al. 2022): the prior
    # (a zero residual) is bicubic itself, so a small model adds detail on top of it instead of redrawing the mouth.
    srd_target: str = "image"
    residual_scale: float = 4.0
    # fine-tuning (``edidub adapt``): start from this model folder's weights and network instead of the preset's
    init_from: str | None = None
    # run
    seed: int = 0
    bf16: bool = False
    checkpoint_every: int = 5000
    keep_checkpoints: int = 2
    log_every: int = 50
    export_dtype: ExportDtype = ExportDtype.FP32

    def __post_init__(self) -> None:
        for name, kind in (("task", Task), ("export_dtype", ExportDtype)):
            try:
                object.__setattr__(self, name, kind(getattr(self, name)))
            except ValueError:
                raise InvalidArgumentError(f"{name}={getattr(self, name)!r} is not one of {', '.join(m.value for m in kind)}") from None
        object.__setattr__(self, "model_overrides", dict(self.model_overrides))
        object.__setattr__(self, "low_res_range", tuple(int(v) for v in self.low_res_range))
        object.__setattr__(self, "betas", tuple(float(v) for v in self.betas))
        checks = (
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.warmup_steps >= 0, "warmup_steps must be >= 0"),
            (0.0 < self.lr and 0.0 <= self.min_lr <= self.lr, "need 0 < lr and 0 <= min_lr <= lr"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)"),
            (0.0 <= self.cond_drop_prob <= 1.0, "cond_drop_prob must be in [0, 1]"),
            (self.checkpoint_every >= 1 and self.log_every >= 1, "checkpoint_every and log_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.window_frames >= 1 and self.size >= 1 and self.stride >= 1, "window_frames, size, stride must be >= 1"),
            (self.max_timestep is None or 1 <= self.max_timestep <= self.train_timesteps, "max_timestep must be in [1, train_timesteps]"),
            (self.srd_target in SRD_TARGETS, f"srd_target must be one of {', '.join(SRD_TARGETS)}"),
            (self.residual_scale > 0, "residual_scale must be positive"),
            (self.srd_target == "image" or self.task is Task.SRD, "only the SRD has a residual target"),
        )
        for ok, message in checks:
            if not ok:
                raise InvalidArgumentError(f"bad training config: {message}")

    # ------------------------------------------------------------------ model
    def model_config(self, *, num_units: int | None = None):
        """The network's :class:`~edidub_engine.models.UNet3DConfig`: preset + overrides (+ the codebook's units for LSD)."""
        from edidub_engine.models import PRESETS, UNet3DConfig

        if self.model_preset not in PRESETS:
            raise InvalidArgumentError(f"unknown model preset {self.model_preset!r}", hint=f"choose one of {', '.join(sorted(PRESETS))}")
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.model_overrides.items()}
        if self.task is Task.LSD and num_units is not None and "num_units" not in overrides:
            overrides["num_units"] = int(num_units)
        try:
            config = dataclasses.replace(PRESETS[self.model_preset](), **overrides)
        except TypeError as exc:
            raise InvalidArgumentError(f"bad model override: {exc}") from None
        if config.sample_size != self.size:
            config = dataclasses.replace(config, sample_size=self.size)
        if not isinstance(config, UNet3DConfig):  # pragma: no cover - PRESETS holds factories of UNet3DConfig
            raise TypeError(config)
        return config

    # ------------------------------------------------------------------ io
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["task"], d["export_dtype"] = self.task.value, self.export_dtype.value
        d["model_overrides"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_overrides.items()}
        d["low_res_range"], d["betas"] = list(self.low_res_range), list(self.betas)
        return d

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names - {"format"})
        if unknown:
            raise InvalidArgumentError(f"unknown training config key(s) {', '.join(unknown)}", hint=f"known keys: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in values.items() if k in names})

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``{"format": ..., **to_dict()}`` atomically."""
        from edidub_engine.files import write_json_atomically

        return write_json_atomically(Path(path), {"format": CONFIG_FORMAT, **self.to_dict()})


def load_train_config(path: str | os.PathLike) -> TrainConfig:
    """A :class:`TrainConfig` from a ``config.json`` (a run folder's, or one written by hand)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidArgumentError(f"training config {path} not found") from None
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"training config {path} is not readable JSON ({exc})") from None
    if values.get("format", CONFIG_FORMAT) != CONFIG_FORMAT:
        raise InvalidArgumentError(f"{path} is a {values.get('format')!r} config; this version reads {CONFIG_FORMAT}")
    return TrainConfig.from_dict(values)


def _paper(task: Task) -> TrainConfig:
    if task is Task.LSD:
        return TrainConfig(task=task, model_preset="lsd-paper", window_frames=25, size=64)
    return TrainConfig(task=task, model_preset="srd-paper", window_frames=5, size=224, low_res_range=(32, 64), cond_drop_prob=0.0)


def _tiny(task: Task) -> TrainConfig:
    small = dict(steps=2000, batch_size=4, lr=1e-3, min_lr=1e-4, warmup_steps=50, ema_decay=0.995, checkpoint_every=500, log_every=10)
    if task is Task.LSD:
        # 32 px crops resampled from the stored 64 px; 8-frame windows
        return TrainConfig(task=task, model_preset="lsd-tiny", window_frames=8, size=32, **small)
    # 64 px from the stored 224 px; the low-res side spans half to all of the tiny LSD's 32 px (paper: 32-64 for a 64 px LSD)
    return TrainConfig(task=task, model_preset="srd-tiny", window_frames=5, size=64, low_res_range=(16, 32), cond_drop_prob=0.0, **small)


def _starter(task: Task) -> TrainConfig:
    """The shipped starter pair (``scripts/train_starter.sh``), each on one CPU thread.

    LSD: lsd-tiny narrowed to base 24 at 32 px, 1500 steps on four GRID clips (~20 CPU-minutes).
    SRD: srd-tiny at 128 px from 32-64 px, 600 steps on 108 GRID clips, trained only below
    timestep 500: its sampler starts from the noised bicubic upsample (strength < 1) and adds
    detail instead of re-inventing the mouth (~50 CPU-minutes).
    """
    common = dict(batch_size=4, lr=1e-3, min_lr=1e-4, warmup_steps=100, ema_decay=0.995,
                  checkpoint_every=250, log_every=25, export_dtype=ExportDtype.FP16)
    if task is Task.LSD:
        return dataclasses.replace(_tiny(task), steps=1500, model_overrides={"base_channels": 24}, **common)
    return dataclasses.replace(_tiny(task), size=128, steps=600, low_res_range=(32, 64), max_timestep=500, **common,
                               model_overrides={"sample_size": 128})


def _starter_residual(task: Task) -> TrainConfig:
    """The starter SRD diffusing the residual over bicubic (``srd_target="residual"``, see
    :mod:`edidub_engine.diffusion.residual`) instead of the crop: the image-target starter SRD
    still lost to bicubic after 1750 steps (28.6 against 28.9 dB inside the mask)."""
    return dataclasses.replace(_starter(Task.SRD), srd_target="residual", steps=1200, checkpoint_every=100)


def _starter_64(task: Task) -> TrainConfig:
    """An LSD at the paper's 64 px for the starter (four levels at base 24, attention at 8 px; 5.1 M parameters),
    in bf16 autocast. After 1500 steps (58 minutes on an AMX Xeon core) it lost to the 32 px one end to end
    (22.8 against 26.2 dB), so it is not shipped; resume it (``--resume --steps N``) or train it on a GPU."""
    return dataclasses.replace(_starter(Task.LSD), size=64, bf16=True,
                               model_overrides={"base_channels": 24, "sample_size": 64, "channel_mults": [1, 2, 2, 4],
                                                "attention_resolutions": [8]})


TRAIN_PRESETS = {
    "lsd-paper": lambda: _paper(Task.LSD),
    "srd-paper": lambda: _paper(Task.SRD),
    "lsd-tiny": lambda: _tiny(Task.LSD),
    "srd-tiny": lambda: _tiny(Task.SRD),
    "lsd-starter": lambda: _starter(Task.LSD),
    "srd-starter": lambda: _starter(Task.SRD),
    "srd-starter-residual": lambda: _starter_residual(Task.SRD),
    "lsd-starter-64": lambda: _starter_64(Task.LSD),
}


def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` → ``(key, value)``; the value is JSON when it parses (``16``, ``[1, 2]``, ``true``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidArgumentError(f"override {text!r} is not KEY=VALUE", hint="e.g. --set steps=1000 --set model.base_channels=16")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def apply_overrides(config: TrainConfig, overrides: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> TrainConfig:
    """``config`` with fields replaced; ``model.<field>`` keys go into ``model_overrides``."""
    items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    plain: dict[str, Any] = {}
    model = dict(config.model_overrides)
    for key, value in items:
        if key.startswith("model."):
            model[key[len("model."):]] = value
        elif key == "model_overrides":
            model.update(dict(value))
        elif key in fields:
            plain[key] = value
        else:
            raise InvalidArgumentError(f"unknown training setting {key!r}", hint=f"known: {', '.join(sorted(fields))}, model.<field>")
    return dataclasses.replace(config, model_overrides=model, **plain)


def train_config(preset: str | os.PathLike, **overrides: Any) -> TrainConfig:
    """A preset name (:data:`TRAIN_PRESETS`) or a ``config.json`` path, with keyword overrides."""
    name = str(preset)
    if name in TRAIN_PRESETS:
        config = TRAIN_PRESETS[name]()
    elif name.endswith(".json") or Path(name).expanduser().is_file():
        config = load_train_config(name)
    else:
        raise InvalidArgumentError(f"unknown training preset {name!r}", hint=f"choose one of {', '.join(TRAIN_PRESETS)} or a config.json")
    return apply_overrides(config, overrides) if overrides else config
