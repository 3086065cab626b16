"""Speech frontends: 16 kHz mono audio → feature vectors at 50 Hz (two per 25 fps frame).

Two frontends share one frame geometry so the codebook, alignment and models
never care which one made the features: frame ``k`` is computed from the
400-sample (25 ms) window starting at sample ``320 k`` (20 ms hop), and a clip
of ``n`` samples gives exactly ``n // 320`` frames, i.e. frame ``k`` stands for
``[k / 50, (k + 1) / 50)`` s. HuBERT's convolutional encoder has exactly this
window and hop; the audio is padded on the right by 80 samples so its last
frame is not dropped (HuBERT alone gives 49 frames for one second).

- :class:`HubertFrontend` (alias ``HubertUnits``) — the paper's method: HuBERT
  (``facebook/hubert-large-ll60k``) from a local transformers folder.
- :class:`MelFrontend` — an embedded log-mel frontend with no weights, so the
  whole system runs and trains on a fresh machine. It is the paper's
  "w/o HuBERT" direction, not its method: log-mel keeps speaker and channel
  (pitch, timbre, loudness) in the features, which a codebook then spends
  clusters on.

torch and transformers are imported only when a HuBERT model is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from edidub_engine.errors import InvalidArgumentError, ModelMissingError
from edidub_engine.model_paths import resolve_model

__all__ = [
    "FRAME_RATE_HZ",
    "HOP_SAMPLES",
    "HUBERT_MODEL_NAME",
    "SAMPLE_RATE_HZ",
    "WINDOW_SAMPLES",
    "HubertFrontend",
    "HubertFrontendConfig",
    "HubertUnits",
    "MelFrontend",
    "MelFrontendConfig",
    "SpeechFrontend",
    "frame_count",
    "load_frontend",
]

SAMPLE_RATE_HZ = 16000
FRAME_RATE_HZ = Fraction(50)
HOP_SAMPLES = 320  # 20 ms at 16 kHz
WINDOW_SAMPLES = 400  # 25 ms at 16 kHz: HuBERT's receptive field
HUBERT_MODEL_NAME = "hubert-large-ll60k"
FRONTEND_NAMES = ("hubert", "mel")


def frame_count(num_samples: int) -> int:
    """Frames a frontend returns for ``num_samples`` of 16 kHz audio (50 Hz, floor)."""
    return int(num_samples) // HOP_SAMPLES


def _as_audio(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise InvalidArgumentError(
            f"audio has shape {audio.shape}; a frontend takes mono samples (one dimension)",
            hint="load it with edidub_engine.media.load_audio, which returns mono float32 at 16 kHz",
        )
    return audio.astype(np.float32, copy=False)


class SpeechFrontend(Protocol):
    """What the codebook and alignment need from a frontend."""

    name: str

    @property
    def feature_dim(self) -> int: ...

    def settings(self) -> dict[str, Any]:
        """JSON-able settings that define the feature space (stored in codebooks, compared on load)."""
        ...

    def features(self, audio: np.ndarray) -> np.ndarray:
        """``[frame_count(len(audio)) x feature_dim]`` float32 for 16 kHz mono ``audio``."""
        ...


# ----------------------------------------------------------------------------- log-mel


@dataclass(frozen=True)
class MelFrontendConfig:
    """Log-mel settings. 80 bands up to 8 kHz is the usual speech choice (Whisper, TTS vocoders)."""

    n_mels: int = 80
    n_fft: int = 512
    min_frequency_hz: float = 0.0
    max_frequency_hz: float = 8000.0
    # Power floor before the log. A fixed (not per-clip) floor keeps features independent of
    # what else is in the window, so a frame's unit does not change with the shot's extent.
    log_floor: float = 1e-6

    def __post_init__(self) -> None:
        if self.n_mels < 1 or self.n_fft < WINDOW_SAMPLES:
            raise InvalidArgumentError(
                f"mel settings n_mels={self.n_mels}, n_fft={self.n_fft} are not usable",
                hint=f"use n_mels >= 1 and n_fft >= {WINDOW_SAMPLES}",
            )


class MelFrontend:
    """Log-mel spectrogram at 50 Hz (25 ms Hann window, 20 ms hop), in numpy; no weights."""

    name = "mel"

    def __init__(self, config: MelFrontendConfig | None = None):
        from transformers.audio_utils import mel_filter_bank  # pure numpy; no torch

        self.config = config or MelFrontendConfig()
        c = self.config
        self._filters = mel_filter_bank(
            num_frequency_bins=c.n_fft // 2 + 1,
            num_mel_filters=c.n_mels,
            min_frequency=c.min_frequency_hz,
            max_frequency=c.max_frequency_hz,
            sampling_rate=SAMPLE_RATE_HZ,
            norm="slaney",
            mel_scale="slaney",
        ).astype(np.float32)  # [freq x mel]
        self._window = np.hanning(WINDOW_SAMPLES + 1)[:-1].astype(np.float32)  # periodic Hann

    @property
    def feature_dim(self) -> int:
        return self.config.n_mels

    def settings(self) -> dict[str, Any]:
        return {
            "sample_rate_hz": SAMPLE_RATE_HZ,
            "hop_samples": HOP_SAMPLES,
            "window_samples": WINDOW_SAMPLES,
            **asdict(self.config),
        }

    block_frames = 1500  # 30 s per block: the spectra of a ten-minute line would take ~300 MB at once

    def features(self, audio: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio)
        count = frame_count(len(audio))
        if count == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        # Frame k reads samples [320 k, 320 k + 400) only, so blocks cut on frame boundaries (with the
        # next block's first 80 samples) give the features of the whole (to float32 rounding: BLAS
        # blocks the mel projection by matrix size).
        return np.concatenate([
            self._block(audio[first * HOP_SAMPLES : min(count, first + self.block_frames) * HOP_SAMPLES + WINDOW_SAMPLES - HOP_SAMPLES])
            for first in range(0, count, self.block_frames)
        ])

    def _block(self, audio: np.ndarray) -> np.ndarray:
        count = frame_count(len(audio))
        padded = np.pad(audio, (0, WINDOW_SAMPLES - HOP_SAMPLES))
        frames = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[::HOP_SAMPLES][:count]
        spectrum = np.fft.rfft(frames * self._window, n=self.config.n_fft, axis=-1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        mel = power @ self._filters
        return np.log(np.maximum(mel, self.config.log_floor)).astype(np.float32)


# ----------------------------------------------------------------------------- HuBERT


@dataclass(frozen=True)
class HubertFrontendConfig:
    """Which HuBERT features to take, and how to feed long audio.

    ``layer``: None takes ``last_hidden_state``, the model's output features, as
    the paper does (appendix B.1). An integer ``i`` takes ``hidden_states[i]``:
    0 is the input to the first transformer layer, ``num_hidden_layers`` the
    last layer's output (for HuBERT-Large, whose encoder ends in a layer norm,
    that is taken before the norm and differs from ``last_hidden_state``;
    measured with transformers 5.24). Middle layers (e.g.
    22 of 24) are sometimes preferred for phonetic units; that is a codebook
    choice, stored in its metadata.

    ``normalize``: zero-mean unit-variance input per chunk. None follows the
    folder's ``preprocessor_config.json`` (``do_normalize``), else the config
    (on for layer-norm feature extractors such as HuBERT-Large).

    ``chunk_s``/``chunk_context_s``: audio longer than ``chunk_s`` runs in
    chunks with this much real audio each side, dropped afterwards, so memory
    stays flat (self-attention is quadratic) and seams see context.
    """

    layer: int | None = None
    normalize: bool | None = None
    chunk_s: float = 30.0
    chunk_context_s: float = 1.0

    def __post_init__(self) -> None:
        if self.chunk_s <= 0 or self.chunk_context_s < 0:
            raise InvalidArgumentError(
                f"HuBERT chunk_s={self.chunk_s}, chunk_context_s={self.chunk_context_s} are not usable",
                hint="use chunk_s > 0 and chunk_context_s >= 0",
            )


_HUBERT_HINT = (
    f"copy a transformers HuBERT folder (config.json + model.safetensors, e.g. facebook/{HUBERT_MODEL_NAME}) "
    f"there, set $EDIDUB_MODELS to the folder holding '{HUBERT_MODEL_NAME}', or pass --hubert DIR; "
    "to run without HuBERT use the embedded log-mel frontend (--units mel)"
)


class HubertFrontend:
    """HuBERT features at 50 Hz from a local transformers model (never downloaded).

    Build with :meth:`from_folder` (resolves ``--hubert DIR``, then
    ``$EDIDUB_MODELS/hubert-large-ll60k``, then the user data folder), or pass a
    ``transformers.HubertModel`` already in memory.
    """

    name = "hubert"

    def __init__(
        self,
        model: Any,
        *,
        config: HubertFrontendConfig | None = None,
        model_name: str = "in-memory",
        model_fingerprint: str = "",
        normalize_default: bool | None = None,
        device: str = "cpu",
    ):
        self.config = config or HubertFrontendConfig()
        self.model = model.eval().to(device)
        self.device = device
        self.model_name = model_name
        self.model_fingerprint = model_fingerprint
        mc = model.config
        stride = int(np.prod(mc.conv_stride))
        receptive = 1 + sum((k - 1) * int(np.prod(mc.conv_stride[:i])) for i, k in enumerate(mc.conv_kernel))
        if stride != HOP_SAMPLES or receptive != WINDOW_SAMPLES:
            raise InvalidArgumentError(
                f"HuBERT model {model_name} has a {stride}-sample hop and {receptive}-sample window; "
                f"EdiDub needs {HOP_SAMPLES} and {WINDOW_SAMPLES} (50 Hz at 16 kHz)",
                hint="use a HuBERT model with the standard convolutional encoder",
            )
        layer = self.config.layer
        if layer is not None and not (0 <= layer <= mc.num_hidden_layers):
            raise InvalidArgumentError(
                f"HuBERT layer {layer} does not exist in {model_name}, which has {mc.num_hidden_layers} layers",
                hint=f"choose a layer from 0 to {mc.num_hidden_layers}, or none for the output features",
            )
        if self.config.normalize is not None:
            self.normalize = self.config.normalize
        elif normalize_default is not None:
            self.normalize = normalize_default
        else:
            self.normalize = mc.feat_extract_norm == "layer"

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike | None = None,
        *,
        config: HubertFrontendConfig | None = None,
        device: str = "cpu",
    ) -> HubertFrontend:
        """Load HuBERT from ``folder`` or the model search paths (see :mod:`edidub_engine.model_paths`)."""
        path = resolve_model(HUBERT_MODEL_NAME, explicit=folder, what="HuBERT model", hint=_HUBERT_HINT)
        from transformers import HubertModel

        try:
            model = HubertModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelMissingError(
                f"HuBERT folder {path} has config.json but its weights could not be loaded ({exc})",
                hint=_HUBERT_HINT,
                details={"path": str(path)},
            ) from None
        config_bytes = (path / "config.json").read_bytes()
        normalize_default = None
        preprocessor = path / "preprocessor_config.json"
        if preprocessor.is_file():
            normalize_default = bool(json.loads(preprocessor.read_text()).get("do_normalize", False))
        return cls(
            model,
            config=config,
            model_name=path.name,
            model_fingerprint=hashlib.sha256(config_bytes).hexdigest()[:16],
            normalize_default=normalize_default,
            device=device,
        )

    @property
    def feature_dim(self) -> int:
        return int(self.model.config.hidden_size)

    def settings(self) -> dict[str, Any]:
        return {
            "sample_rate_hz": SAMPLE_RATE_HZ,
            "hop_samples": HOP_SAMPLES,
            "layer": self.config.layer,
            "normalize": self.normalize,
            "model_name": self.model_name,
            "model_config_sha256": self.model_fingerprint,
            "hidden_size": self.feature_dim,
            "num_hidden_layers": int(self.model.config.num_hidden_layers),
        }

    def features(self, audio: np.ndarray) -> np.ndarray:
        audio = _as_audio(audio)
        count = frame_count(len(audio))
        if count == 0:
            return np.zeros((0, self.feature_dim), np.float32)
        chunk = max(1, round(self.config.chunk_s * FRAME_RATE_HZ))  # frames
        margin = round(self.config.chunk_context_s * FRAME_RATE_HZ)
        parts = []
        for first in range(0, count, chunk):
            last = min(count, first + chunk)
            lo, hi = max(0, first - margin), min(count, last + margin)
            feats = self._run(audio[lo * HOP_SAMPLES : hi * HOP_SAMPLES])
            parts.append(feats[first - lo : last - lo])
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _run(self, audio: np.ndarray) -> np.ndarray:
        import torch

        count = frame_count(len(audio))
        x = audio
        if self.normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        x = np.pad(x, (0, WINDOW_SAMPLES - HOP_SAMPLES))
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None].to(self.device)
            want_hidden = self.config.layer is not None
            out = self.model(inputs, output_hidden_states=want_hidden)
            hidden = out.hidden_states[self.config.layer] if want_hidden else out.last_hidden_state
            feats = hidden[0].float().cpu().numpy()
        if len(feats) < count:  # not for the standard encoder; kept safe for odd paddings
            feats = np.concatenate([feats, np.repeat(feats[-1:], count - len(feats), axis=0)])
        return feats[:count]


HubertUnits = HubertFrontend
"""The name the issue uses for the HuBERT feature extractor."""


def load_frontend(
    units: str,
    *,
    hubert_dir: str | os.PathLike | None = None,
    hubert_config: HubertFrontendConfig | None = None,
    mel_config: MelFrontendConfig | None = None,
    device: str = "cpu",
) -> HubertFrontend | MelFrontend:
    """The frontend called ``units`` ('hubert' or 'mel')."""
    if units == "hubert":
        return HubertFrontend.from_folder(hubert_dir, config=hubert_config, device=device)
    if units == "mel":
        return MelFrontend(mel_config)
    raise InvalidArgumentError(f"unknown speech frontend {units!r}", hint=f"use one of {', '.join(FRONTEND_NAMES)}")



def frontend_for_codebook(codebook, *, units: str | None = None, hubert_dir: str | os.PathLike | None = None, device: str = "cpu"):
    """The frontend with the settings ``codebook`` was fitted with (HuBERT layer, mel bands…).

    ``units`` defaults to the codebook's own frontend; another one is refused by
    :meth:`~edidub_engine.audio.codebook.Codebook.check_frontend` when the encoder is built.
    """
    from dataclasses import fields

    units = units or codebook.frontend
    fitted = codebook.frontend_settings
    if units == "hubert":
        config = HubertFrontendConfig(layer=fitted.get("layer"), normalize=fitted.get("normalize"))
        return load_frontend("hubert", hubert_dir=hubert_dir, hubert_config=config, device=device)
    mel = {f.name: fitted[f.name] for f in fields(MelFrontendConfig) if f.name in fitted}
    return load_frontend(units, mel_config=MelFrontendConfig(**mel), device=device)
