"""The networks a renderer dubs with, and whether a bundle's SRD is worth running (from its model card)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidArgumentError

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
        from ..audio import Codebook, UnitEncoder, frontend_for_codebook
        from ..models import load_model
        from ..models.bundle import read_bundle, resolve_bundle

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


LSD_MARGIN_DB = 0.05
"""How much the LSD's edit must bring the actor's moved mouths closer to the truth to run (as for the SRD)."""


def lsd_verdict(card: dict[str, Any]) -> dict[str, Any]:
    """Whether a bundle's LSD should edit the moved mouths, from ``edidub check``'s ``mouths`` figures in its card.

    Measured on clips the bundle never saw, dubbed with their own speech, each frame given a mouth of the same
    clip from outside an exclusion window (as the paper's training references are chosen): ``moved_db`` is that
    picture inside the lower-face mask against the true frame, ``lsd_db`` the LSD's edit of it. ``runs_lsd``:
    True when the edit gains at least :data:`LSD_MARGIN_DB`, False when it does not, None when unchecked.
    """
    mouths = ((card or {}).get("check") or {}).get("mouths") or {}
    if "moved_db" not in mouths or "lsd_db" not in mouths:
        return {"runs_lsd": None, "reason": "the bundle's LSD is unchecked on moved mouths (run `edidub check`)"}
    moved, lsd = float(mouths["moved_db"]), float(mouths["lsd_db"])
    figures = f"{lsd:.2f} dB with its edit against {moved:.2f} dB for the actor's moved mouths alone"
    if lsd >= moved + LSD_MARGIN_DB:
        return {"runs_lsd": True, "reason": f"the bundle's LSD brings the moved mouths closer to the truth ({figures})"}
    return {"runs_lsd": False, "reason": (f"the bundle's LSD does not bring the moved mouths closer to the truth ({figures}), so the "
                                          "actor's own mouths are placed without it (--lsd on forces it)")}


__all__ = ["LSD_MARGIN_DB", "SRD_MARGIN_DB", "LoadedModels", "lsd_verdict", "srd_beats_bicubic", "srd_verdict"]
