"""Batch shots on Ray: a pool of actors, each keeping a :class:`~edidub_engine.render.ShotRenderer` loaded.

* ``address="local"`` starts a Ray on this machine (``num_cpus`` = the actors, no dashboard) and
  stops it afterwards; any other address (``auto``, ``ray://head:10001``, ``head:6379``) joins a
  running cluster and leaves it running.
* One actor per GPU (``num_gpus=1``; its models on ``cuda``) when the cluster has GPUs, else CPU
  actors (``num_cpus=1``); ``actors`` caps the pool.  Shots go to whichever actor is free.
* An actor answers ``progress()`` while it renders (``max_concurrency=2``), so the driver shows a
  bar per running shot.
* Results are the clips' ``to_dict()`` (plain data); the files are written by the actors to the
  shot's output folder, so on a multi-machine cluster the media and that folder must be on a
  path every node sees (a shared filesystem), exactly as for a render farm.
* The frames are the same as a local run's: the same renderer, bundle, request and seed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import ray

from edidub_engine.daemon.protocol import InternalError
from edidub_engine.errors import EdidubError
from edidub_engine.shot import RenderedClip, ShotRequest

_POLL_S = 0.5


@ray.remote(max_concurrency=2)
class ShotActor:
    """Loads the bundle once; ``dub(request_dict)`` renders one shot and returns a plain result map."""

    def __init__(self, models: str | None, cache_dir: str | None, use_cache: bool, device: str):
        from edidub_engine.cache import InversionCache
        from edidub_engine.render import LoadedModels, ShotRenderer

        if device == "cpu":
            # Ray pins an actor with num_cpus=1 to one thread (OMP_NUM_THREADS=1); CPU kernels then sum
            # in another order than a local run and the frames differ in the last bits, which diffusion
            # amplifies. Use the thread count a local process gets, so Ray and local give the same frames.
            import torch

            torch.set_num_threads(os.cpu_count() or 1)
        loaded = LoadedModels.load(models).to(device)
        self.renderer = ShotRenderer(loaded, cache=InversionCache(cache_dir) if use_cache else None)
        self.device = device
        self._progress: dict[str, tuple[str, int, int]] = {}

    def identity(self) -> dict[str, Any]:
        return {**self.renderer.models.identity, "device": self.device, "pid": os.getpid()}

    def dub(self, request: dict[str, Any]) -> dict[str, Any]:
        shot = ShotRequest.from_dict(request)

        def progress(stage: str, done: int, total: int) -> None:
            self._progress[shot.shot_id] = (stage, done, total)

        try:
            clip = self.renderer.dub_shot(shot, progress=progress)
        except EdidubError as err:
            return {"ok": False, "error": err.to_dict()}
        except Exception as exc:  # an engine bug: report it as the shot's failure, keep the actor
            return {"ok": False, "error": InternalError(f"shot {shot.shot_id!r} failed on a Ray actor: {type(exc).__name__}: {exc}").to_dict()}
        finally:
            self._progress.pop(shot.shot_id, None)
        return {"ok": True, "clip": clip.to_dict()}

    def progress(self) -> dict[str, tuple[str, int, int]]:
        return dict(self._progress)


def _error(data: dict[str, Any]) -> EdidubError:
    from edidub_engine.daemon.protocol import error_from_wire

    return error_from_wire(data)


def render_on_ray(pending: Sequence[ShotRequest], cb, *, address: str = "local", models: str | None = None,
                  actors: int | None = None, cache_dir=None, use_cache: bool = True) -> None:
    """Render ``pending`` on Ray actors, calling ``cb.progress/done/failed`` as in the local runner."""
    started_here = False
    if not ray.is_initialized():
        if address == "local":
            cpus = max(1, min(actors or len(pending), len(pending), os.cpu_count() or 1))
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        started_here = True
    pool: list[Any] = []
    try:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        if gpus:
            count, options, device = gpus, {"num_gpus": 1, "num_cpus": 1}, "cuda"
        else:
            count, options, device = int(resources.get("CPU", 1)), {"num_cpus": 1}, "cpu"
        count = max(1, min(count, actors or count, len(pending)))
        pool = [ShotActor.options(**options).remote(models, None if cache_dir is None else str(cache_dir), use_cache, device)
                for _ in range(count)]
        queue = list(pending)
        running: dict[Any, tuple[Any, ShotRequest]] = {}  # ObjectRef → (actor, shot)
        idle = list(pool)
        while queue or running:
            while queue and idle:
                actor, shot = idle.pop(0), queue.pop(0)
                running[actor.dub.remote(shot.to_dict())] = (actor, shot)
            ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
            for ref in ready:
                actor, shot = running.pop(ref)
                idle.append(actor)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:  # the actor died (out of memory, a lost node)
                    cb.failed(shot, InternalError(f"shot {shot.shot_id!r}: the Ray actor failed ({type(exc).__name__})"))
                    idle.remove(actor)
                    if not idle and not running and queue:
                        raise InternalError("every Ray actor failed", hint="see the Ray logs (ray logs / the dashboard)") from None
                    continue
                if result.get("ok"):
                    cb.done(shot, RenderedClip.from_dict(result["clip"]))
                else:
                    cb.failed(shot, _error(result["error"]))
            for actor, shot in list(running.values()):
                try:
                    live = ray.get(actor.progress.remote(), timeout=2)
                except Exception:
                    continue
                if shot.shot_id in live:
                    cb.progress(shot.shot_id, *live[shot.shot_id])
            if not ready:
                time.sleep(0)
    finally:
        for actor in pool:
            ray.kill(actor)
        if started_here:
            ray.shutdown()
