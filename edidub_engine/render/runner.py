"""The daemon's runner: every servable bundle by name on one device, and a process-wide default renderer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..acceleration import Acceleration
from ..cache import InversionCache
from ..errors import ModelMissingError
from ..shot import RenderedClip, ShotRequest
from .models import LoadedModels
from .renderer import ShotRenderer

Progress = Callable[[str, int, int], None]  # (stage, frames or steps done, total)
ShouldCancel = Callable[[], bool]

_renderer: ShotRenderer | None = None


def dub_shot(request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> RenderedClip:
    """Dub one shot on the CPU with the default bundle, loaded once per process and kept."""
    global _renderer
    if _renderer is None:
        _renderer = ShotRenderer(LoadedModels.load(), cache=InversionCache())
    return _renderer.dub_shot(request, progress=progress, should_cancel=should_cancel)


class ModelRunner:
    """A daemon worker's runner: every servable bundle by name, each loaded on its device at first use and kept.

    ``options.model`` of a request picks the bundle (``None``: ``default``); the default is
    loaded at start, so a broken default stops the worker before it takes a job.
    """

    def __init__(self, device: str, bundles: dict[str, Path], *, default: str, hubert_dir: str | Path | None = None,
                 acceleration: Acceleration | None = None):
        if default not in bundles:
            raise ModelMissingError(f"default model bundle {default!r} is not among the bundles found ({', '.join(sorted(bundles)) or 'none'})",
                                    hint="pass --models DIR with that bundle, or --default-model with one of those names")
        self.device, self.bundles, self.default, self.hubert_dir = device, dict(bundles), default, hubert_dir
        self.acceleration = acceleration
        self._renderers: dict[str, ShotRenderer] = {}
        self._renderer(default)

    def _renderer(self, name: str) -> ShotRenderer:
        if name not in self._renderers:
            models = LoadedModels.load(self.bundles[name], hubert_dir=self.hubert_dir).to(self.device)
            self._renderers[name] = ShotRenderer(models, cache=InversionCache(), acceleration=self.acceleration)
        return self._renderers[name]

    def __call__(self, request: ShotRequest, *, progress: Progress | None = None, should_cancel: ShouldCancel | None = None) -> RenderedClip:
        name = request.options.model or self.default
        if name not in self.bundles:
            raise ModelMissingError(f"shot {request.shot_id!r}: model bundle {name!r} is not served here",
                                    hint=f"choose one of {', '.join(sorted(self.bundles))}")
        return self._renderer(name).dub_shot(request, progress=progress, should_cancel=should_cancel)

    def describe_models(self) -> list[dict[str, Any]]:
        """Each bundle for ``hello``/``models``: name, path, version, its card's description, which is the default."""
        from ..models.bundle import read_bundle

        out = []
        for name, path in sorted(self.bundles.items(), key=lambda kv: (kv[0] != self.default, kv[0])):
            info = read_bundle(path)
            loaded = self._renderers.get(name)
            out.append({"name": name, "present": True, "path": str(path), "version": info.version,
                        "sha256": loaded.models.identity["sha256"] if loaded else None,
                        "details": {"default": name == self.default, "frontend": info.frontend,
                                    "description": info.card.get("description", ""), "check": info.card.get("check", {}).get("end_to_end")}})
        return out


def runner_for_device(device: str) -> ModelRunner:
    """The daemon's default runner factory: a :class:`ModelRunner` per device.

    ``edidub serve`` passes its choices through the environment: ``EDIDUB_MODEL_DIRS``
    (``--models``, joined with ``os.pathsep``), ``EDIDUB_DEFAULT_MODEL``, ``EDIDUB_HUBERT``,
    and ``EDIDUB_PRECISION``/``EDIDUB_COMPILE`` over the device's fast path.
    """
    import os

    from ..models.bundle import DEFAULT_BUNDLE, find_bundles

    folders = [f for f in os.environ.get("EDIDUB_MODEL_DIRS", "").split(os.pathsep) if f]
    adapted = os.environ.get("EDIDUB_ADAPTED_DIR")
    if adapted and Path(adapted).is_dir():  # bundles earlier adapt jobs made
        folders.append(adapted)
    acceleration = Acceleration.parse(os.environ.get("EDIDUB_PRECISION") or None, os.environ.get("EDIDUB_COMPILE") or None, device)
    return ModelRunner(device, find_bundles(folders), default=os.environ.get("EDIDUB_DEFAULT_MODEL") or DEFAULT_BUNDLE,
                       hubert_dir=os.environ.get("EDIDUB_HUBERT") or None, acceleration=acceleration)


__all__ = ["ModelRunner", "dub_shot", "runner_for_device"]
