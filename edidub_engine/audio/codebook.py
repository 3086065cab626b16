"""The k-means codebook that turns 50 Hz speech features into discrete units.

The paper (sec. 3.1, app. B.1) fits 200 clusters on one million HuBERT-Large
output vectors from LJSpeech, a single speaker: with one voice, k-means has no
speaker directions to spend clusters on, so units carry phonetic content. Unit
indices are ``0 .. clusters - 1``; index ``clusters`` is the reserved null
unit (classifier-free guidance, padding), which no centre produces.

A codebook is a safetensors file: one tensor ``centres`` ``[clusters x dim]``
float32 and string metadata (format, frontend name and settings, clusters,
seed, what it was fitted on). Loading it with the other frontend, another
HuBERT layer or another feature size is an :class:`InvalidArgumentError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edidub_engine.errors import InvalidArgumentError, ModelMissingError, OutputExistsError

from .frontends import SAMPLE_RATE_HZ, SpeechFrontend

__all__ = ["AUDIO_SUFFIXES", "CODEBOOK_FORMAT", "Codebook", "fit_codebook", "list_speech_files"]

CODEBOOK_FORMAT = "edidub-codebook/1"
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac")
# Settings whose change alters the feature space (the rest, such as a HuBERT folder's name, is informative).
_COMPARED_SETTINGS = {
    "hubert": ("layer", "normalize", "hidden_size", "hop_samples", "sample_rate_hz"),
    "mel": ("n_mels", "n_fft", "min_frequency_hz", "max_frequency_hz", "log_floor", "hop_samples", "window_samples", "sample_rate_hz"),
}
_ASSIGN_BLOCK = 8192  # rows per distance block: bounds memory to block x clusters floats


@dataclass(frozen=True, eq=False)
class Codebook:
    """Cluster centres plus the provenance needed to use them correctly.

    ``centres``: ``[clusters x dim]`` float32. ``frontend``/``frontend_settings``
    say which features they live in; ``fitted_on`` records the data
    (folder, files, seconds, vectors) for the model card.
    """

    centres: np.ndarray
    frontend: str
    frontend_settings: dict[str, Any]
    seed: int
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @property
    def clusters(self) -> int:
        return int(self.centres.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.centres.shape[1])

    @property
    def null_unit(self) -> int:
        """The reserved unit for "no speech given" (CFG) and padding; equals ``clusters``."""
        return self.clusters

    @property
    def vocabulary_size(self) -> int:
        """Rows an embedding table needs: every cluster plus the null unit."""
        return self.clusters + 1

    def check_frontend(self, frontend: SpeechFrontend) -> None:
        """Raise if ``frontend`` does not make the features these centres were fitted on."""
        ours = f"{self.frontend} ({_describe(self.frontend_settings)})"
        theirs = f"{frontend.name} ({_describe(frontend.settings())})"
        if frontend.name != self.frontend:
            raise InvalidArgumentError(
                f"the codebook was fitted on '{self.frontend}' features but the '{frontend.name}' frontend was given: "
                f"codebook {ours}, frontend {theirs}",
                hint=f"use --units {self.frontend}, or fit a codebook for '{frontend.name}' with `edidub codebook fit`",
                details={"codebook_frontend": self.frontend, "frontend": frontend.name},
            )
        settings = frontend.settings()
        differ = [
            key
            for key in _COMPARED_SETTINGS.get(self.frontend, ())
            if key in self.frontend_settings and self.frontend_settings[key] != settings.get(key)
        ]
        if frontend.feature_dim != self.feature_dim and "hidden_size" not in differ:
            differ.append("feature_dim")
        if differ:
            raise InvalidArgumentError(
                f"the codebook's {self.frontend} settings differ from the frontend's in {', '.join(differ)}: "
                f"codebook {ours}, frontend {theirs}",
                hint="use the settings the codebook was fitted with, or fit a new codebook with `edidub codebook fit`",
                details={"differ": differ},
            )

    def assign(self, features: np.ndarray) -> np.ndarray:
        """Nearest centre (squared Euclidean) per row of ``[T x dim]`` features → ``[T]`` int64."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise InvalidArgumentError(
                f"features of shape {features.shape} do not fit a codebook of {self.clusters} x {self.feature_dim}",
                hint="extract them with the frontend the codebook was fitted on",
            )
        centres = self.centres.astype(np.float32, copy=False)
        centre_sq = np.einsum("kd,kd->k", centres, centres)
        out = np.empty(len(features), np.int64)
        for lo in range(0, len(features), _ASSIGN_BLOCK):
            block = features[lo : lo + _ASSIGN_BLOCK]
            # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 does not change the argmin.
            out[lo : lo + len(block)] = np.argmin(centre_sq[None, :] - 2.0 * (block @ centres.T), axis=1)
        return out

    # ------------------------------------------------------------------ disk

    def metadata(self) -> dict[str, str]:
        return {
            "format": CODEBOOK_FORMAT,
            "frontend": self.frontend,
            "frontend_settings": json.dumps(self.frontend_settings, sort_keys=True),
            "clusters": str(self.clusters),
            "feature_dim": str(self.feature_dim),
            "null_unit": str(self.null_unit),
            "seed": str(self.seed),
            "fitted_on": json.dumps(self.fitted_on, sort_keys=True),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write to ``path`` via a temp file in the same folder; never replaces an existing file."""
        from safetensors.numpy import save_file

        path = Path(path).expanduser()
        if path.exists():
            raise OutputExistsError(f"{path} already exists; codebooks are never overwritten", hint="choose another -o path or delete the old file")
        if not path.parent.is_dir():
            raise InvalidArgumentError(f"cannot write {path}: folder {path.parent} does not exist", hint="create it or choose another -o path")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        os.close(fd)
        try:
            save_file({"centres": np.ascontiguousarray(self.centres, dtype=np.float32)}, tmp, metadata=self.metadata())
            try:
                os.link(tmp, path)  # atomic and refuses an existing name, unlike rename
            except FileExistsError:
                raise OutputExistsError(f"{path} appeared while the codebook was written; not overwritten", hint="choose another -o path") from None
            except OSError:  # file systems without hard links: rename (a race here could replace a new file)
                if path.exists():
                    raise OutputExistsError(f"{path} already exists; codebooks are never overwritten", hint="choose another -o path") from None
                os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Codebook:
        from safetensors import SafetensorError, safe_open

        path = Path(path).expanduser()
        if not path.is_file():
            raise ModelMissingError(
                f"codebook {path} does not exist",
                hint="make one with `edidub codebook fit SPEECH_DIR -o codebook.safetensors` (the paper fits 200 clusters on LJSpeech)",
                details={"path": str(path)},
            )
        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = fh.metadata() or {}
                centres = fh.get_tensor("centres")
            if meta.get("format") != CODEBOOK_FORMAT:
                raise ValueError(f"format is {meta.get('format')!r}, expected {CODEBOOK_FORMAT!r}")
            return cls(
                centres=centres.astype(np.float32, copy=False),
                frontend=meta["frontend"],
                frontend_settings=json.loads(meta["frontend_settings"]),
                seed=int(meta["seed"]),
                fitted_on=json.loads(meta.get("fitted_on", "{}")),
            )
        except (SafetensorError, ValueError, KeyError, OSError) as exc:
            raise InvalidArgumentError(
                f"{path} is not an EdiDub codebook ({exc})",
                hint="pass a file written by `edidub codebook fit`",
                details={"path": str(path)},
            ) from None


def _describe(settings: dict[str, Any]) -> str:
    keys = ("layer", "model_name", "hidden_size", "n_mels")
    return ", ".join(f"{k}={settings[k]}" for k in keys if k in settings) or "default settings"


def list_speech_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive), sorted so a fit is reproducible."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InvalidArgumentError(f"speech folder {folder} does not exist", hint="pass a folder of speech recordings (e.g. LJSpeech's wavs/)")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise InvalidArgumentError(
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {folder}", hint="pass a folder of speech recordings (e.g. LJSpeech's wavs/)"
        )
    return files


def fit_codebook(
    frontend: SpeechFrontend,
    files: Sequence[str | os.PathLike],
    *,
    clusters: int = 200,
    max_vectors: int = 1_000_000,
    seed: int = 0,
    source: str = "",
    on_file: Callable[[int, int, Path, int], None] | None = None,
) -> Codebook:
    """Fit ``clusters`` centres on at most ``max_vectors`` frontend vectors from ``files``.

    When the files hold more vectors than ``max_vectors``, a uniform random
    subset is kept while reading (each vector gets a seeded random key and
    the smallest keys survive), so memory stays at ``max_vectors x dim``
    whatever the corpus size. Same files, order and seed → same codebook.
    ``on_file(index, total, path, vectors_kept)`` reports progress.
    """
    from sklearn.cluster import MiniBatchKMeans

    from edidub_engine.media import load_audio

    if clusters < 1 or max_vectors < clusters:
        raise InvalidArgumentError(
            f"clusters={clusters}, max_vectors={max_vectors}: need clusters >= 1 and max_vectors >= clusters",
            hint="the paper uses --clusters 200 --max-vectors 1000000",
        )
    rng = np.random.default_rng(seed)
    blocks: list[np.ndarray] = []
    key_blocks: list[np.ndarray] = []
    held = 0
    seconds = 0.0
    total_vectors = 0
    paths = [Path(f) for f in files]

    def prune() -> None:
        """Keep the ``max_vectors`` vectors with the smallest keys (in reading order)."""
        nonlocal held
        feats, keys = np.concatenate(blocks), np.concatenate(key_blocks)
        if len(feats) > max_vectors:
            keep = np.sort(np.argpartition(keys, max_vectors - 1)[:max_vectors])
            feats, keys = feats[keep], keys[keep]
        blocks[:], key_blocks[:] = [feats], [keys]
        held = len(feats)

    # Prune only once a quarter more than max_vectors is held: copying is then amortised
    # (a 1M x 1024 HuBERT-Large buffer is 4 GB) while memory stays under 1.25 x max_vectors + one file.
    slack = max(max_vectors // 4, 1)
    for index, path in enumerate(paths):
        audio = load_audio(path, sample_rate_hz=SAMPLE_RATE_HZ)
        seconds += len(audio) / SAMPLE_RATE_HZ
        feats = frontend.features(audio)
        total_vectors += len(feats)
        blocks.append(feats)
        key_blocks.append(rng.random(len(feats)))
        held += len(feats)
        if held > max_vectors + slack:
            prune()
        if on_file is not None:
            on_file(index + 1, len(paths), path, min(held, max_vectors))
    prune()
    kept = blocks[0]
    if len(kept) < clusters:
        raise InvalidArgumentError(
            f"only {len(kept)} feature vectors ({seconds:.1f} s of audio) for {clusters} clusters",
            hint="give more speech or ask for fewer --clusters",
        )
    kmeans = MiniBatchKMeans(
        n_clusters=clusters,
        random_state=seed,
        batch_size=min(len(kept), 10 * 1024),
        n_init=3,
        max_iter=100,
    ).fit(kept)
    return Codebook(
        centres=kmeans.cluster_centers_.astype(np.float32),
        frontend=frontend.name,
        frontend_settings=frontend.settings(),
        seed=int(seed),
        fitted_on={
            "source": source,
            "files": len(paths),
            "seconds": round(seconds, 3),
            "vectors_seen": int(total_vectors),
            "vectors_used": int(len(kept)),
            "max_vectors": int(max_vectors),
            "inertia_per_vector": float(kmeans.inertia_) / max(1, len(kept)),
        },
    )
