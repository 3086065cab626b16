"""Speech units: 16 kHz speech → 50 Hz features → k-means units → two units per video frame.

- :mod:`.frontends`: :class:`HubertFrontend` (alias ``HubertUnits``; the paper's
  HuBERT-Large, from a local folder) and :class:`MelFrontend` (embedded log-mel,
  no weights; the paper's "w/o HuBERT" direction).
- :mod:`.codebook`: :class:`Codebook` (safetensors, provenance in metadata,
  nearest-centre assignment, null unit = number of clusters) and :func:`fit_codebook`.
- :mod:`.units`: :class:`UnitEncoder`, :func:`align_units`, :func:`units_for_shot`,
  :func:`shot_units` → :class:`FrameUnits`.
- :mod:`.commands`: ``edidub codebook fit``.

Importing this package loads no model and imports neither torch nor
transformers nor scikit-learn; they load when a frontend or fit needs them.
"""

from .codebook import Codebook, fit_codebook, list_speech_files
from .frontends import (
    FRAME_RATE_HZ,
    HUBERT_MODEL_NAME,
    SAMPLE_RATE_HZ,
    HubertFrontend,
    HubertFrontendConfig,
    HubertUnits,
    MelFrontend,
    MelFrontendConfig,
    SpeechFrontend,
    frame_count,
    frontend_for_codebook,
    load_frontend,
)
from .units import DEFAULT_CONTEXT_FRAMES, UNITS_PER_FRAME, FrameUnits, UnitEncoder, align_units, shot_units, units_for_shot

__all__ = [
    "DEFAULT_CONTEXT_FRAMES",
    "FRAME_RATE_HZ",
    "HUBERT_MODEL_NAME",
    "SAMPLE_RATE_HZ",
    "UNITS_PER_FRAME",
    "Codebook",
    "FrameUnits",
    "HubertFrontend",
    "HubertFrontendConfig",
    "HubertUnits",
    "MelFrontend",
    "MelFrontendConfig",
    "SpeechFrontend",
    "UnitEncoder",
    "align_units",
    "fit_codebook",
    "frame_count",
    "list_speech_files",
    "frontend_for_codebook",
    "load_frontend",
    "shot_units",
    "units_for_shot",
]
