"""Training: dataset preparation (``edidub prepare``), reference-frame selection, datasets.

Never imported by inference. Importing this package loads no model; torch is imported
only by :mod:`.dataset`, MediaPipe only when a clip is prepared.

- :mod:`.reference`: the paper's training reference frame (§3.1), :func:`select_references`.
- :mod:`.prepare`: :func:`prepare_dataset` — clips → safetensors shards + ``manifest.json``.
- :mod:`.dataset`: :class:`LipSyncWindowDataset` (LSD) and :class:`SuperResWindowDataset` (SRD).
- :mod:`.commands`: ``edidub prepare``.
"""

from .prepare import PrepareReport, PrepareSettings, prepare_dataset, read_manifest
from .reference import DEFAULT_EXCLUSION_FRAMES, REFERENCE_LANDMARKS, select_references, shot_ids_from_cuts

__all__ = [
    "DEFAULT_EXCLUSION_FRAMES",
    "REFERENCE_LANDMARKS",
    "LipSyncWindowDataset",
    "PrepareReport",
    "PrepareSettings",
    "SuperResWindowDataset",
    "prepare_dataset",
    "read_manifest",
    "select_references",
    "shot_ids_from_cuts",
]


def __getattr__(name: str):
    if name in ("LipSyncWindowDataset", "SuperResWindowDataset"):  # torch only when asked for
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
