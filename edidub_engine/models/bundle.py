"""A model bundle: everything one dub needs, in one folder, found by one resolver.

Layout (``edidub-bundle/1``)::

    <bundle>/bundle.json            format, name, version, frontend, what each part is
    <bundle>/model_card.json        what it was trained on, how, and how well (shown by `edidub doctor`)
    <bundle>/lsd/                   diffusers layout: config.json + diffusion_pytorch_model.safetensors
    <bundle>/srd/                   the same
    <bundle>/codebook.safetensors   the speech-unit codebook the LSD was trained with

Why one folder: an LSD is only meaningful with the codebook (and so the speech
frontend) it was trained on, and an SRD with the LSD resolution it was trained
behind; shipping them apart invites mixing.  Lookup order: an explicit folder,
then ``$EDIDUB_MODELS/<name>``, then the user data folder, then the starter
bundle that ships inside the package (never the working directory, never the
network).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EdidubError, InvalidArgumentError, ModelMissingError
from ..model_paths import MODELS_ENV, resolve_model, user_models_dir

if TYPE_CHECKING:
    from .sampling import SamplingSettings

BUNDLE_FORMAT = "edidub-bundle/1"
DEFAULT_BUNDLE = "edidub-starter"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "starter_models"


def _is_bundle(path: Path) -> bool:
    return path.is_dir() and (path / "bundle.json").is_file()


def resolve_bundle(explicit: str | os.PathLike | None = None, *, name: str = DEFAULT_BUNDLE) -> Path:
    """The folder of bundle ``name`` (or the explicit one); :class:`ModelMissingError` naming every place looked in."""
    hint = (
        "pass --models DIR with a bundle folder (bundle.json, lsd/, srd/, codebook.safetensors), "
        "or train one with `edidub prepare` + `edidub train`"
    )
    try:
        return resolve_model(name, explicit=explicit, what="model bundle", hint=hint, is_valid=_is_bundle)
    except ModelMissingError as missing:
        shipped = SHIPPED_DIR / name
        if explicit is None and _is_bundle(shipped):
            return shipped
        searched = list(missing.details.get("searched", []))
        if explicit is None:
            searched.append(str(shipped))
            raise ModelMissingError(
                f"model bundle '{name}' not found; looked in {', '.join(searched)}",
                hint=hint,
                details={"name": name, "searched": searched},
            ) from None
        raise


def find_bundles(folders: "list[str | os.PathLike] | tuple[str | os.PathLike, ...]" = ()) -> dict[str, Path]:
    """Every bundle a daemon can serve, by name: in ``folders`` (each a bundle or a folder of bundles, in
    the order given), then ``$EDIDUB_MODELS`` and the user's model folder, then the shipped starter.

    The first bundle of a name wins, so a bundle the user names explicitly shadows an installed one.
    """
    places: list[Path] = [Path(f).expanduser() for f in folders]
    for folder in (os.environ.get(MODELS_ENV, ""),):
        if folder and os.path.isabs(folder):
            places.append(Path(folder))
    places += [user_models_dir(), SHIPPED_DIR]
    found: dict[str, Path] = {}
    for place in places:
        for candidate in [place] if _is_bundle(place) else (sorted(p for p in place.iterdir() if _is_bundle(p)) if place.is_dir() else []):
            try:
                info = read_bundle(candidate)
            except EdidubError:
                continue  # a damaged bundle is reported when it is named, not while listing
            found.setdefault(info.name, candidate)
    return found


@dataclass(frozen=True)
class BundleInfo:
    path: Path
    name: str
    version: str
    frontend: str  # the speech frontend its codebook was fitted with ("mel" or "hubert")
    card: dict[str, Any]
    defaults: dict[str, Any] = field(default_factory=dict)  # DubSettings this bundle was tuned for (e.g. fewer steps)

    @property
    def lsd_dir(self) -> Path:
        return self.path / "lsd"

    @property
    def srd_dir(self) -> Path:
        return self.path / "srd"

    @property
    def codebook_path(self) -> Path:
        return self.path / "codebook.safetensors"

    def sampling(self, network: str) -> "SamplingSettings":
        """How ``network`` ("lsd" or "srd") runs: its ``sampling.json``, else derived from its training (older bundles)."""
        from .sampling import SamplingSettings

        folder = self.path / network
        saved = SamplingSettings.load(folder)
        if saved is not None:
            return saved
        card = self.card.get(network) or {}
        steps = int(self.defaults.get("steps", 50))
        if network == "lsd":
            return SamplingSettings.from_training(card, steps=steps, inversion_steps=int(self.defaults.get("inversion_steps", steps)),
                                                  guidance_scale=float(self.defaults.get("guidance_scale", 5.0)))
        return SamplingSettings.from_training(card, steps=int(self.defaults.get("srd_steps") or steps))

    def dub_defaults(self) -> dict[str, Any]:
        """DubSettings fields for this bundle: ``bundle.json`` defaults, with each network's own sampling settings on top."""
        lsd, srd = self.sampling("lsd"), self.sampling("srd")
        return {
            **self.defaults,
            "steps": lsd.steps, "inversion_steps": lsd.inversion_steps, "guidance_scale": lsd.guidance_scale,
            "window_frames": lsd.window_frames, "window_stride": lsd.window_stride,
            "srd_steps": srd.steps, "srd_window_frames": srd.window_frames, "srd_window_stride": srd.window_stride,
            "srd_strength": srd.strength, "srd_target": srd.target or "image", "srd_residual_scale": srd.residual_scale or 1.0,
            "srd_start_noise": 1.0 if srd.start_noise is None else srd.start_noise,
        }

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "frontend": self.frontend, "path": str(self.path)}


def read_bundle(path: str | os.PathLike) -> BundleInfo:
    """Read and check ``bundle.json`` and that every part is on disk (loads no weights)."""
    path = Path(path)
    try:
        meta = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelMissingError(f"{path / 'bundle.json'} is missing", hint="point --models at a bundle folder") from None
    except (OSError, ValueError) as exc:
        raise InvalidArgumentError(f"{path / 'bundle.json'} is not readable JSON ({exc})") from None
    if meta.get("format") != BUNDLE_FORMAT:
        raise InvalidArgumentError(
            f"{path} is a {meta.get('format')!r} bundle; this engine reads {BUNDLE_FORMAT}",
            hint="re-export the models with this version's `edidub train`",
        )
    card_path = path / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    info = BundleInfo(path=path, name=str(meta["name"]), version=str(meta.get("version", "0")),
                      frontend=str(meta["frontend"]), card=card, defaults=dict(meta.get("defaults") or {}))
    for part in (info.lsd_dir / "config.json", info.srd_dir / "config.json", info.codebook_path):
        if not part.is_file():
            raise ModelMissingError(f"model bundle {path.name} lacks {part.relative_to(path)}", hint="the bundle is incomplete; copy it again")
    return info


def write_bundle_manifest(
    path: str | os.PathLike,
    *,
    name: str,
    version: str,
    frontend: str,
    card: dict[str, Any],
    defaults: dict[str, Any] | None = None,
) -> Path:
    """Write ``bundle.json`` and ``model_card.json`` into a folder that already holds lsd/, srd/ and the codebook.

    ``defaults``: DubSettings fields this bundle should run with unless a request says
    otherwise (a small CPU model may want fewer steps than the paper's 50).
    """
    path = Path(path)
    meta = {"format": BUNDLE_FORMAT, "name": name, "version": version, "frontend": frontend, "defaults": dict(defaults or {})}
    (path / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (path / "model_card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    read_bundle(path)
    return path
