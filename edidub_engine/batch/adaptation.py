"""``edidub batch --adapt PATTERN``: one adapted bundle per actor before the shots render, cached by its inputs.

The supervisor names each actor's clips in the cut with a pattern (``ANNA_*``: the clip names,
the rule ``edidub adapt --timeline --clip-name`` uses). Before rendering, the batch adapts the base
bundle once per pattern on that actor's takes in the cut (the picture clips matching it, with the
production sound in their own media), and every shot whose clip matches is dubbed with it.

The bundle is cached by what made it — the base bundle's hash, each take's file (path, size,
modification time) and frames, and the budget — under the user cache (``adapted/``), so the
German batch of the same cut reuses the bundle the French batch made, and an interrupted
adaptation resumes. Through a daemon, the bundle is made by the daemon's adapt job under the
same name, and reused when the daemon already serves it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edidub_engine.errors import InvalidArgumentError
from edidub_engine.shot import ShotRequest

__all__ = ["ActorBundle", "adapt_actors", "adapted_cache_dir", "assign_bundles"]


@dataclass(frozen=True)
class ActorBundle:
    """The adapted bundle for the clips matching ``pattern``: its name and, made here, its folder."""

    pattern: str
    name: str
    clips: tuple  # AdaptClip, the takes it learns from
    path: Path | None = None
    reused: bool = False


def adapted_cache_dir() -> Path:
    """Where adapted bundles are cached: ``$XDG_CACHE_HOME/edidub/adapted`` (beside the inversion cache)."""
    from edidub_engine.cache import default_cache_dir

    return default_cache_dir().parent / "adapted"


def _key(base_sha: str, clips: Sequence, budget: dict) -> str:
    takes = []
    for clip in clips:
        stat = Path(clip.path).stat()
        takes.append([str(Path(clip.path).resolve()), stat.st_size, stat.st_mtime_ns, clip.start, clip.end])
    return hashlib.sha256(json.dumps({"base": base_sha, "takes": takes, "budget": budget}, sort_keys=True).encode()).hexdigest()


def _slug(pattern: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", pattern.lower()).strip("-") or "actor"


def adapt_actors(config, *, client=None, log: Callable[[str], None] | None = None,
                 on_step: Callable[[str, int, int], None] | None = None) -> list[ActorBundle]:
    """One bundle per ``config.adapt`` pattern, made or reused (see the module docstring). ``client``: a daemon's
    :class:`~edidub_engine.client.Client` to adapt through; None adapts in this process."""
    from edidub_engine.models.bundle import read_bundle, resolve_bundle
    from edidub_engine.training.adapt import adapt_bundle, clips_from_timeline, work_folder

    say = log or (lambda _line: None)
    budget = {"minutes": config.adapt_minutes, "steps": config.adapt_steps}
    if client is None:
        base = read_bundle(resolve_bundle(config.models))
        digest = hashlib.sha256()
        for part in (base.lsd_dir / "diffusion_pytorch_model.safetensors", base.srd_dir / "diffusion_pytorch_model.safetensors",
                     base.codebook_path):
            digest.update(part.read_bytes())
        base_sha = digest.hexdigest()
    else:  # the daemon's default bundle, by where it is and its version (listed from its start; its hash only once loaded)
        served = {m.name: m for m in client.models()}
        default = next((m for m in served.values() if m.details.get("default")), None)
        base_sha = f"{default.name}:{default.path}:{default.version}" if default else "daemon-default"
    actors = []
    for pattern in config.adapt:
        clips = clips_from_timeline(config.timeline, clip_name=pattern, picture_tracks=config.picture_tracks,
                                    rate=config.timeline_rate, timeline_name=config.timeline_name, log=say)
        name = f"actor-{_slug(pattern)}-{_key(base_sha, clips, budget)[:12]}"
        if client is not None:
            if name in served:
                say(f"{pattern}: the daemon already serves {name}; reusing it")
                actors.append(ActorBundle(pattern, name, tuple(clips), reused=True))
                continue
            say(f"{pattern}: adapting on {len(clips)} take(s) through the daemon as {name}…")
            job_id, _ = client.adapt(name, [(str(c.path), c.start, c.end) for c in clips], steps=config.adapt_steps,
                                     minutes=config.adapt_minutes)
            for event in client.events(job_id):
                if on_step is not None and event.frames_total:
                    on_step(pattern, event.frames_done, event.frames_total)
            result = client.adapted(job_id)
            say(f"{pattern}: {name} validates at {result.get('after_db')} dB (base {result.get('before_db')} dB)")
            actors.append(ActorBundle(pattern, name, tuple(clips), Path(result["path"]) if result.get("path") else None))
            continue
        folder = adapted_cache_dir() / name
        if (folder / "edidub_bundle.json").is_file() or _readable(folder):
            say(f"{pattern}: reusing the adapted bundle {folder} (same base, takes and budget)")
            actors.append(ActorBundle(pattern, name, tuple(clips), folder, reused=True))
            continue
        folder.parent.mkdir(parents=True, exist_ok=True)
        say(f"{pattern}: adapting {base.name} on {len(clips)} take(s) into {folder}…")
        result = adapt_bundle(clips, folder, base=base.path, name=name, steps=config.adapt_steps, minutes=config.adapt_minutes,
                              resume=work_folder(folder).is_dir(), log=lambda line, _p=pattern: say(f"{_p}: {line}"),
                              on_step=None if on_step is None else (lambda done, total, _p=pattern: on_step(_p, done, total)))
        say(f"{pattern}: validation {result.before_db:.2f} dB (base) -> {result.best_db:.2f} dB")
        actors.append(ActorBundle(pattern, name, tuple(clips), result.bundle))
    return actors


def _readable(folder: Path) -> bool:
    from edidub_engine.errors import EdidubError
    from edidub_engine.models.bundle import read_bundle

    if not folder.is_dir():
        return False
    try:
        read_bundle(folder)
    except EdidubError:
        return False
    return True


def assign_bundles(shots: Sequence[ShotRequest], actors: Sequence[ActorBundle]) -> list[ShotRequest]:
    """Each shot whose clip name matches an actor's pattern, dubbed with that actor's bundle (``options.model``); the
    first matching pattern wins. A pattern that matches no shot to dub is refused: it is most likely a typo."""
    out, matched = [], set()
    for shot in shots:
        clip = str(shot.record.get("clip") or "").lower()
        actor = next((a for a in actors if fnmatch.fnmatch(clip, a.pattern.lower())), None)
        if actor is not None:
            matched.add(actor.pattern)
            shot = dataclasses.replace(shot, options=dataclasses.replace(shot.options, model=actor.name))
        out.append(shot)
    unused = [a.pattern for a in actors if a.pattern not in matched]
    if unused and shots:
        raise InvalidArgumentError(f"--adapt {unused[0]!r} matches no shot to dub in this cut",
                                   hint="the pattern names the actor's clips (shell pattern on clip names, any case): see `edidub shots`")
    return out
