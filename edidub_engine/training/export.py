"""Exports: a trained run → a model folder the inference side loads; two runs + a codebook → a bundle.

A model folder (``RUN_DIR/model``) is diffusers layout — ``config.json`` +
``diffusion_pytorch_model.safetensors`` (the EMA weights, in the run's ``export_dtype``:
fp16 for shipping) — plus ``model_card.json``: the task, the network, the speech
frontend and codebook, the data (dataset manifest summary, clip names, licence note),
the steps, wall time, first and final training loss, and the exact command that
produced it. Everything is written to a hidden temp folder and renamed into place.

A bundle (:func:`export_bundle`, ``edidub train bundle``) copies an LSD run's and an SRD
run's model folders and the codebook into the :mod:`edidub_engine.models.bundle` layout
and writes ``bundle.json`` + ``model_card.json`` through
:func:`~edidub_engine.models.bundle.write_bundle_manifest`. The LSD must have been trained
on units of that very codebook (checked by its sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edidub_engine.errors import InvalidArgumentError, ModelMissingError, OutputExistsError
from edidub_engine.files import write_json_atomically

__all__ = [
    "CARD_NAME",
    "export_bundle",
    "export_model",
]

CARD_NAME = "model_card.json"


def _publish_dir(tmp: Path, final: Path) -> Path:
    """Rename a finished temp folder over ``final`` (an older one is moved aside first, then removed)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.chmod(tmp, 0o755)  # mkdtemp's 0700 would hide a shared model from other users
    for f in tmp.rglob("*"):
        os.chmod(f, 0o755 if f.is_dir() else 0o644)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _torch_dtype(name: str):
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[str(name)]


def export_model(
    model,
    ema,
    out_dir: Path,
    *,
    config,
    dataset,
    data_dir: Path,
    step: int,
    wall_time_s: float,
    final_loss: float | None,
    first_loss: float | None,
    command: list[str] | str,
    resumed_with: list[str] | None = None,
    data_licence: str | None = None,
    world_size: int = 1,
    device: str = "cpu",
) -> Path:
    """Write the EMA weights of ``model`` (diffusers layout, ``config.export_dtype``) and its card to ``out_dir``."""
    import torch

    from edidub_engine.models import EdiDubUNet3DModel, count_parameters


    export = EdiDubUNet3DModel(**{k: v for k, v in model.config.items() if not k.startswith("_")})
    ema.copy_to(export)
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its note on keeping modules in float32 does not apply: there are none
    try:
        export = export.to("cpu", _torch_dtype(config.export_dtype.value)).eval()
    finally:
        diffusers_logging.set_verbosity(verbosity)
    out_dir = Path(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    try:
        export.save_pretrained(tmp, safe_serialization=True)
        manifest = dataset.manifest
        clips = [c["name"] for c in manifest["clips"]]
        card = {
            "format": "edidub-model-card/1",
            "task": config.task.value,
            "model": {
                "class": type(export).__name__,
                "preset": config.model_preset,
                "overrides": dict(config.model_overrides),
                "parameters": count_parameters(export),
                "sample_size": export.config.sample_size,
                "weights": {"dtype": config.export_dtype.value, "ema": True, "ema_decay": config.ema_decay,
                            "sha256": _sha256(tmp / "diffusion_pytorch_model.safetensors")},
            },
            "frontend": manifest["codebook"]["frontend"],
            "codebook": {k: manifest["codebook"][k] for k in ("sha256", "frontend", "clusters", "null_unit", "vocabulary_size")},
            "data": {
                "dataset": data_dir.name,
                "format": manifest["format"],
                "clips": clips,
                "totals": manifest.get("totals", {}),
                "windows": len(dataset),
                "window_frames": config.window_frames,
                "size": config.size,
                "source_crops": getattr(dataset, "stored_size", config.size),
                "prepare_settings_hash": manifest.get("settings_hash"),
                "exclusion_frames": manifest["settings"].get("exclusion_frames"),
                "licence": data_licence or "not recorded (pass --data-licence)",
            },
            "training": {
                "steps": int(step),
                "wall_time_s": round(float(wall_time_s), 1),
                "first_loss": first_loss,
                "final_loss": final_loss,
                "final_loss_note": "mean masked-MSE training loss (eq. 1) over the last 100 steps; first_loss: over the first log_every steps",
                "world_size": world_size,
                "device": device,
                "threads": _threads(),
                "torch": torch.__version__,
                "config": config.to_dict(),
            },
            "command": command_line(command) if isinstance(command, list) else str(command),
            "resumed_with": command_line(resumed_with) if resumed_with else None,
            "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": {"python": platform.python_version(), "machine": platform.machine()},
        }
        write_json_atomically(tmp / CARD_NAME, card)
        return _publish_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _write_sampling(bundle: Path, lsd_card: dict[str, Any], srd_card: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Each network's sampling.json: the window it was trained on (half of it as stride), the bundle's step counts, the SRD's start
    (strength and start noise)."""
    from edidub_engine.models.sampling import SamplingSettings

    steps = int(defaults.get("steps", 50))
    SamplingSettings.from_training(lsd_card, steps=steps, inversion_steps=int(defaults.get("inversion_steps", steps)),
                                   guidance_scale=float(defaults.get("guidance_scale", 5.0)),
                                   stride=defaults.get("window_stride")).save(bundle / "lsd")
    SamplingSettings.from_training(srd_card, steps=int(defaults.get("srd_steps") or steps),
                                   strength=defaults.get("srd_strength"), stride=defaults.get("srd_window_stride"),
                                   start_noise=defaults.get("srd_start_noise")).save(bundle / "srd")


def _model_dir(run_or_model: str | os.PathLike) -> Path:
    """A run folder (→ its ``model/``) or a model folder itself."""
    path = Path(run_or_model).expanduser()
    for candidate in (path / "model", path):
        if (candidate / "config.json").is_file() and (candidate / "diffusion_pytorch_model.safetensors").is_file():
            return candidate
    raise ModelMissingError(f"no exported model in {path}", hint="finish the run with `edidub train` (it exports RUN_DIR/model)")


def _read_card(model_dir: Path) -> dict[str, Any]:
    path = model_dir / CARD_NAME
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def export_bundle(
    lsd: str | os.PathLike,
    srd: str | os.PathLike,
    codebook: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    name: str,
    version: str = "1",
    description: str | None = None,
    notes: str | None = None,
    credits: str | None = None,
    extra: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Assemble a bundle folder from an LSD run (or model folder), an SRD run and the codebook.

    Checks that the LSD's unit table fits the codebook and that it was trained on units of
    this codebook (sha256 in its card). The bundle card carries both models' cards.
    """
    from edidub_engine.audio import Codebook
    from edidub_engine.models.bundle import read_bundle, write_bundle_manifest

    lsd_dir, srd_dir = _model_dir(lsd), _model_dir(srd)
    codebook = Path(codebook).expanduser()
    if not codebook.is_file():
        raise ModelMissingError(f"codebook {codebook} not found")
    cb = Codebook.load(codebook)
    lsd_card, srd_card = _read_card(lsd_dir), _read_card(srd_dir)
    lsd_config = json.loads((lsd_dir / "config.json").read_text(encoding="utf-8"))
    if lsd_config.get("num_units") != cb.vocabulary_size:
        raise InvalidArgumentError(f"the LSD's unit table has {lsd_config.get('num_units')} rows; codebook {codebook.name} has {cb.vocabulary_size} units")
    trained_on = lsd_card.get("codebook", {}).get("sha256")
    sha = _sha256(codebook)
    if trained_on is not None and trained_on != sha:
        raise InvalidArgumentError(f"the LSD was trained with codebook {trained_on[:12]}…, not {codebook.name} ({sha[:12]}…)",
                                   hint="bundle the codebook the LSD's dataset was prepared with")
    out = Path(out_dir).expanduser()
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} already exists", hint="choose another -o folder or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for src, part in ((lsd_dir, "lsd"), (srd_dir, "srd")):
            (tmp / part).mkdir()
            for f in ("config.json", "diffusion_pytorch_model.safetensors", CARD_NAME):
                if (src / f).is_file():
                    shutil.copy2(src / f, tmp / part / f)
        _write_sampling(tmp, lsd_card, srd_card, defaults or {})
        shutil.copy2(codebook, tmp / "codebook.safetensors")
        sizes = {p.relative_to(tmp).as_posix(): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
        card = {
            "format": "edidub-bundle-card/1",
            "name": name,
            "version": version,
            "description": description or f"EdiDub bundle {name}: LSD + SRD + speech-unit codebook",
            "notes": notes,
            "credits": credits,
            "frontend": cb.frontend,
            "codebook": {"clusters": cb.clusters, "null_unit": cb.null_unit, "sha256": sha, "fitted_on": cb.fitted_on},
            "lsd": lsd_card,
            "srd": srd_card,
            "files_bytes": sizes,
            "total_bytes": sum(sizes.values()),
            **(extra or {}),
        }
        write_bundle_manifest(tmp, name=name, version=version, frontend=cb.frontend, card=card, defaults=defaults)
        _publish_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_bundle(out).path


def command_line(argv: Sequence[str]) -> str:
    """The command that made a model, as the card records it (shell-quoted)."""
    return " ".join(shlex.quote(a) for a in argv)
