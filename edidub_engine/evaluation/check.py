"""``edidub check``: does each stage of a bundle beat its trivial baseline on clips it never saw?

A green test suite once shipped a main job that painted noise over every face:
nothing measured the picture. This measures it, per stage, on the user's clips
(their own speech, so the source is the right answer):

* **LSD** — own-speech round trip at the LSD size, PSNR inside the lower-face
  mask against the source crop; baseline: the mask filled with its mean colour
  (what an edit that knows nothing would give).
* **SRD** — the source crop reduced to the LSD size (what the LSD sees), then
  restored by the SRD and by plain bicubic upsampling; PSNR of each inside the
  mask against the source crop at the SRD size. A bundle whose SRD loses here
  does not run it (``render.srd_verdict``).
* **end to end** — the shot dubbed with its own sound through the real renderer
  (lossless FFV1), lower-face PSNR in the native frame against the source;
  baseline: the source with the lower face filled with its mean colour.
* **mouths** — does the LSD improve the actor's own mouths moved onto other frames
  (:func:`mouth_figures`; ``render.lsd_verdict`` runs it only where it does).
* **lip sync** — each clip dubbed with *another* clip's speech (the next one's), and the
  figures that say whether its lips follow that line or copy the original
  (:mod:`edidub_engine.mouth.sync`): the own-speech figures above reward a copy, these do not.

The figures go into the bundle's model card (``check``) with ``--write-card``.
"""

from __future__ import annotations

import datetime as _dt
import json
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NoFaceError

__all__ = ["ClipCheck", "check_bundle", "end_to_end_figures", "stage_figures", "summarise", "write_check_into_card"]


@dataclass
class ClipCheck:
    clip: str
    frames: list[int]  # [start, end)
    lsd_round_trip_db: float
    lsd_baseline_db: float
    srd_db: float
    bicubic_db: float
    end_to_end_db: float
    end_to_end_baseline_db: float
    mouths_moved_db: float
    mouths_lsd_db: float
    lip_sync: dict | None = None  # lip_sync_figures of the clip dubbed with another clip's line, and which line

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items() if v is not None}


def _mean_fill(crops: np.ndarray, masks: np.ndarray) -> np.ndarray:
    out = crops.copy()
    for k in range(len(crops)):
        m = masks[k].astype(bool)
        if m.any():
            out[k][m] = crops[k][m].reshape(-1, 3).mean(0).round().astype(np.uint8)
    return out


def _native_lower_face(landmarks: np.ndarray, height: int, width: int) -> np.ndarray:
    """The lower-face mask in frame pixels (the same region the renderer edits)."""
    from ..face import lower_face_mask

    side = max(height, width)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    return lower_face_mask(landmarks, identity, side, grow_px=0)[:height, :width] > 0.5


@dataclass
class _Tracked:
    info: Any
    start: int
    end: int
    ok: list[int]  # shot-relative frames with a tracked face
    track: Any
    decoded: dict[int, np.ndarray]  # absolute frame index → RGB


def _track(pipeline, clip: str | Path, start: int, frames: int) -> _Tracked:
    from ..face import FaceSelector
    from ..media import iter_frames, probe_video
    from ..render import track_shot

    info = probe_video(clip)
    end = min(info.frame_count, start + frames)
    track = track_shot(info, start, end, selector=FaceSelector.largest(), lsd_size=pipeline.lsd_size, progress=None, should_cancel=None)
    ok = [k for k, s in enumerate(track.status) if s == "ok"]
    if len(ok) < max(2, (end - start) // 2):
        raise NoFaceError(f"{info.path.name}: a face was found in only {len(ok)} of frames {start}-{end - 1}",
                          hint="check a clip (or --start) where one face is visible throughout")
    return _Tracked(info, start, end, ok, track, dict(iter_frames(info, start, end)))


def stage_figures(renderer, t: _Tracked) -> dict[str, float]:
    """LSD round trip vs mean fill, SRD vs bicubic (see the module docstring)."""
    from ..face import lower_face_mask, warp_crop
    from ..render.track import crop_matrix
    from .metrics import psnr

    pipeline, settings = renderer.pipeline, renderer.pipeline.settings
    crops, masks = t.track.crops[t.ok], t.track.masks[t.ok]
    units = renderer._units(renderer._source_audio(t.info, t.start, t.end), t.info.rate, t.end - t.start).shot[t.ok]
    lsd_out = pipeline.lip_sync(crops, masks, units, units, settings=settings)
    inside = np.repeat(masks.astype(bool)[..., None], 3, axis=-1)

    size = pipeline.srd_size
    hr, hr_masks = [], []
    for k in t.ok:
        matrix = crop_matrix(t.track.matrices[k], size)
        hr.append(warp_crop(t.decoded[t.start + k], matrix, size))
        hr_masks.append(lower_face_mask(t.track.landmarks[k], matrix, size) > 0.5)
    hr, hr_masks = np.stack(hr), np.stack(hr_masks)
    hr_inside = np.repeat(hr_masks[..., None], 3, axis=-1)
    srd = pipeline.restore(hr, hr_masks, crops, seed=0, first_frame=t.start + t.ok[0], mode="srd", settings=settings)
    bicubic = pipeline.restore(hr, hr_masks, crops, seed=0, mode="bicubic", settings=settings)
    return {"lsd_round_trip_db": psnr(lsd_out, crops, inside), "lsd_baseline_db": psnr(_mean_fill(crops, masks), crops, inside),
            "srd_db": psnr(srd, hr, hr_inside), "bicubic_db": psnr(bicubic, hr, hr_inside)}


MOUTH_EXCLUSION_FRAMES = 6
"""A frame's moved mouth comes from at least this far away in the clip (a quarter second at 25 fps): another syllable."""


def mouth_figures(renderer, t: _Tracked) -> dict[str, float]:
    """Does the bundle's LSD improve the actor's moved mouths? Each frame (own speech) is given the mouth of another
    frame of the clip with its own opening — at least :data:`MOUTH_EXCLUSION_FRAMES` away, so its own mouth cannot
    answer — at the LSD size; PSNR inside the mask against the true crop, of that picture and of the LSD's edit of it
    (inverted and sampled with the clip's own units). ``render.lsd_verdict`` runs the LSD only where it gains."""
    from ..mouth import DonorBank, Donor, mouth_opening, pose_signature
    from ..render.mouths import moved_crop, tone_region
    from ..render.track import crop_matrix
    from .metrics import psnr

    pipeline, settings = renderer.pipeline, renderer.pipeline.settings
    crops, masks, landmarks = t.track.crops[t.ok], t.track.masks[t.ok], t.track.landmarks[t.ok]
    bank = DonorBank(capacity=len(t.ok))
    for k in t.ok:
        bank.add(Donor.from_frame(k, t.decoded[t.start + k], t.track.landmarks[k], t.track.crops[k],
                                  crop_matrix(t.track.matrices[k], pipeline.lsd_size)))
    plan = bank.plan(t.ok, mouth_opening(landmarks), pose_signature(landmarks), exclusion_frames=MOUTH_EXCLUSION_FRAMES)
    moved = np.stack([moved_crop(crops[i], t.track.landmarks[k], t.track.matrices[k], d) for i, (k, d) in enumerate(zip(t.ok, plan.donors))])
    units = renderer._units(renderer._source_audio(t.info, t.start, t.end), t.info.rate, t.end - t.start).shot[t.ok]
    tone = np.stack([tone_region(masks[i], t.track.landmarks[k], t.track.matrices[k], moved[i], crops[i]) for i, k in enumerate(t.ok)])
    edited = pipeline.lip_sync(moved, masks, units, units, settings=settings, tone_reference=tone)
    inside = np.repeat(masks.astype(bool)[..., None], 3, axis=-1)
    return {"mouths_moved_db": psnr(moved, crops, inside), "mouths_lsd_db": psnr(edited, crops, inside)}


def end_to_end_figures(renderer, t: _Tracked, workdir: Path) -> dict[str, float]:
    """The shot dubbed with its own sound (FFV1): lower-face PSNR in the native frame, and the mean-fill baseline."""
    from ..media import iter_frames, probe_video
    from ..shot import ShotRequest

    out_dir = Path(tempfile.mkdtemp(prefix="check-", dir=workdir))
    request = ShotRequest.from_dict({
        "shot_id": "check",
        "source": {"path": str(t.info.path), "start_frame": t.start, "end_frame": t.end},
        "dub_audio": [{"path": str(t.info.path), "start_s": float(Fraction(t.start) / t.info.rate),
                       "duration_s": float(Fraction(t.end - t.start) / t.info.rate)}],
        "output": {"dir": str(out_dir), "codec": "ffv1"},
    })
    clip_out = renderer.dub_shot(request)
    out_frames = [f for _, f in iter_frames(probe_video(clip_out.path), 0, t.end - t.start)]
    errors, base_errors, count = 0.0, 0.0, 0
    for k in t.ok:
        source = t.decoded[t.start + k]
        region = _native_lower_face(t.track.landmarks[k], t.info.height, t.info.width)
        if not region.any():
            continue
        values = source[region].astype(np.float64)
        errors += float(((out_frames[k][region] - values) ** 2).sum())
        base_errors += float(((values - values.mean(0)) ** 2).sum())
        count += values.size
    return {"end_to_end_db": 10 * np.log10(255.0**2 / max(errors / count, 1e-12)),
            "end_to_end_baseline_db": 10 * np.log10(255.0**2 / max(base_errors / count, 1e-12))}


SYNC_FRAMES = 100
"""Frames of each clip the lip-sync stage dubs: loudness correlations over a second are noise."""


def lip_sync_check(renderer, clip: _Tracked, line: _Tracked, workdir: Path) -> dict[str, Any]:
    """``clip`` dubbed through the real renderer with ``line``'s own speech; the lip-sync figures of the result."""
    from ..media import probe_video
    from ..shot import ShotRequest
    from .measure import measure_shot

    end = min(clip.info.frame_count, clip.start + SYNC_FRAMES)
    seconds = float(Fraction(end - clip.start) / clip.info.rate)
    out_dir = Path(tempfile.mkdtemp(prefix="sync-", dir=workdir))
    request = ShotRequest.from_dict({
        "shot_id": "sync",
        "source": {"path": str(clip.info.path), "start_frame": clip.start, "end_frame": end},
        "dub_audio": [{"path": str(line.info.path), "start_s": float(Fraction(line.start) / line.info.rate),
                       "duration_s": min(seconds, float(Fraction(line.info.frame_count - line.start) / line.info.rate))}],
        "output": {"dir": str(out_dir), "codec": "ffv1"},
    })
    dubbed = renderer.dub_shot(request)
    measures = measure_shot(clip.info.path, clip.start, end, dubbed.path, occlusion_every=10**9)
    out = {k: measures.summary.get(k) for k in ("copy_corr", "open_change", "sync_dub", "sync_orig", "silent_open_out", "silent_open_src")}
    out["line"] = f"{line.info.path.name}@{line.start}"
    out["frames"] = [clip.start, end]
    out["source_sync_orig"] = measures.real.get("sync_orig")
    probe_video(dubbed.path)  # the file is whole
    return out


def summarise(clips: list[ClipCheck]) -> dict[str, Any]:
    """Means over clips, in the model card's ``check`` layout."""
    from ..render import srd_beats_bicubic

    def mean(name: str) -> float:
        return round(float(np.mean([getattr(c, name) for c in clips])), 2)

    srd, bicubic = mean("srd_db"), mean("bicubic_db")
    return {
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "how": "edidub check: own-speech round trips on clips outside the training set; PSNR inside the lower-face mask",
        "lsd": {"round_trip_db": mean("lsd_round_trip_db"), "baseline_db": mean("lsd_baseline_db"),
                "baseline": "mask filled with its mean colour"},
        "srd": {"srd_db": srd, "bicubic_db": bicubic, "beats_bicubic": srd_beats_bicubic(srd, bicubic)},
        "end_to_end": {"lower_face_db": mean("end_to_end_db"), "baseline_db": mean("end_to_end_baseline_db")},
        **({"lip_sync": _mean_lip_sync([c.lip_sync for c in clips if c.lip_sync])} if any(c.lip_sync for c in clips) else {}),
        "mouths": {"moved_db": mean("mouths_moved_db"), "lsd_db": mean("mouths_lsd_db"),
                   "how": (f"each frame given the mouth of another frame of its clip (at least {MOUTH_EXCLUSION_FRAMES} frames away) "
                           "with its own opening, at the LSD size; PSNR inside the mask against the true crop, alone and edited by the LSD")},
        "clips": [c.to_dict() for c in clips],
    }


def _mean_lip_sync(rows: list[dict]) -> dict[str, Any]:
    keys = ("copy_corr", "open_change", "sync_dub", "sync_orig", "source_sync_orig")
    out = {k: round(float(np.nanmean([np.nan if r.get(k) is None else r[k] for r in rows])), 3) for k in keys}
    out["how"] = (f"each clip dubbed with the next clip's own speech ({SYNC_FRAMES} frames): its mouth opening against the source's "
                  "(copy_corr, open_change) and against the line's and the original's loudness (sync_dub, sync_orig)")
    return out


def check_bundle(bundle: str | Path | None, clips: list[str], *, start: int = 0, frames: int = 24, settings=None,
                 progress=None) -> dict[str, Any]:
    """Check every clip with the bundle's own settings, then dub them end to end: the way ``auto`` will, and, when the SRD
    wins its stage, both ways (``auto`` then runs it only if the whole render gains as well)."""
    from dataclasses import replace

    from ..config import DubSettings
    from ..render import LoadedModels, ShotRenderer

    models = LoadedModels.load(bundle)
    base = settings or DubSettings().with_overrides(**models.info.dub_defaults())
    renderer = ShotRenderer(models, settings=base)
    tracked, stages = [], []
    for i, clip in enumerate(clips):
        if progress is not None:
            progress("stages", i, len(clips), str(clip))
        tracked.append(_track(renderer.pipeline, clip, start, frames))
        stages.append({**stage_figures(renderer, tracked[-1]), **mouth_figures(renderer, tracked[-1])})
    from ..render import srd_beats_bicubic
    from ..render.models import LSD_MARGIN_DB

    srd_wins = srd_beats_bicubic(float(np.mean([s["srd_db"] for s in stages])), float(np.mean([s["bicubic_db"] for s in stages])))
    # An SRD that wins its stage is also dubbed end to end both ways: it runs only if the whole render gains too, since it
    # costs time (starter 3: +73 % on the README main job for +0.02 dB end to end).
    modes = ["srd", "bicubic"] if srd_wins else ["bicubic"]
    results: dict[str, list[ClipCheck]] = {}
    with tempfile.TemporaryDirectory(prefix="edidub-check-") as workdir:
        for mode in modes:  # the network path with the clip's own speech: the LSD runs (no mouth moves for its own line)
            renderer = ShotRenderer(models, settings=replace(base, restore=mode, lsd="on"))
            results[mode] = []
            for i, (t, figures) in enumerate(zip(tracked, stages)):
                if progress is not None:
                    progress(f"end to end ({mode})", i, len(clips), t.info.path.name)
                figures = {**figures, **end_to_end_figures(renderer, t, Path(workdir))}
                results[mode].append(ClipCheck(clip=t.info.path.name, frames=[t.start, t.end], **{k: float(v) for k, v in figures.items()}))
        e2e = {mode: float(np.mean([c.end_to_end_db for c in checks])) for mode, checks in results.items()}
        mode = "srd" if srd_wins and srd_beats_bicubic(e2e["srd"], e2e["bicubic"]) else "bicubic"
        lsd_gains = float(np.mean([s["mouths_lsd_db"] for s in stages])) >= float(np.mean([s["mouths_moved_db"] for s in stages])) + LSD_MARGIN_DB
        if len(tracked) > 1:  # another clip's line: do the lips follow it (the way `auto` will dub with this card)?
            renderer = ShotRenderer(models, settings=replace(base, restore=mode, lsd="on" if lsd_gains else "off"))
            for i, (t, check) in enumerate(zip(tracked, results[mode])):
                if progress is not None:
                    progress("lip sync", i, len(clips), t.info.path.name)
                check.lip_sync = lip_sync_check(renderer, t, tracked[(i + 1) % len(tracked)], Path(workdir))
    summary = summarise(results[mode])
    summary["settings"] = {k: v for k, v in base.to_dict().items() if k in ("steps", "inversion_steps", "guidance_scale", "srd_steps",
                                                                             "window_frames", "window_stride", "srd_window_frames", "srd_window_stride", "keep_tone",
                                                                             "strength")}
    summary["mouths"]["runs_lsd"] = lsd_gains
    summary["end_to_end"]["restore"] = mode
    if srd_wins:
        summary["end_to_end"]["with_srd_db"], summary["end_to_end"]["with_bicubic_db"] = round(e2e["srd"], 2), round(e2e["bicubic"], 2)
    return summary


def write_check_into_card(bundle_path: Path, summary: dict[str, Any]) -> Path:
    from ..files import write_text_atomically

    card_path = Path(bundle_path) / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card["check"] = summary
    write_text_atomically(card_path, json.dumps(card, indent=2) + "\n")
    return card_path
