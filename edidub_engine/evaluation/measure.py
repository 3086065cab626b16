"""Measure one dubbed shot against its source: every metric of the paper plus what needs no weights.

One tracking pass over the source range and one over the dub, then one
lockstep decode of both.  Face crops for both videos are cut with the
*source's* crop transforms: the dub is pasted back into the same place, so the
same transform frames the same face and tracker jitter on the edited mouth
cannot leak into the identity scores.  Frames without a face get no identity
score (NaN) and are left out of the averages.

The same pass measures the source against itself ("Real Videos" in Table 1):
ID-P is 0 by definition there, ID-TC and LSE are the source's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from . import metrics as M
from .curation import HandOcclusionDetector, head_pose
from ..mouth import lip_sync_figures, lip_sync_reasons, loudness_db
from .sync_proxy import energy_envelope, mouth_opening, sync_proxy

#: QC warnings: a face whose landmark box is shorter than this (frame pixels) is "small".
SMALL_FACE_PX = 80
#: QC warnings: head pose beyond this (degrees, any axis) is "extreme".
EXTREME_POSE_DEG = 35.0
#: PSNR of identical pixels is infinite; tables and JSON show this ceiling instead.
PSNR_CEILING_DB = 100.0
#: How many before/after pairs the QC strip shows.
STRIP_FRAMES = 6
STATUS_CONFIDENCE = {"ok": 1.0, "low_confidence": 0.5, "no_face": 0.0}


@dataclass
class ShotMeasures:
    shot_id: str
    source: str
    start_frame: int
    end_frame: int
    dubbed: str
    fps: float
    passthrough: list[dict] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)  # metric → value (dub)
    real: dict[str, Any] = field(default_factory=dict)  # metric → value (source against itself)
    per_frame: dict[str, list] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    strip: list[dict] = field(default_factory=list)  # {frame, before, after, matte}: uint8 images (not in JSON)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "strip"}


def _finite_list(values: np.ndarray, digits: int = 5) -> list:
    return [None if v is None or not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, np.float64)]


def _fill_matrices(matrices: np.ndarray) -> np.ndarray:
    """Frames without a face borrow the nearest frame's crop transform (for SyncNet's continuous windows)."""
    ok = np.isfinite(matrices).all(axis=(1, 2))
    if not ok.any():
        return matrices
    idx = np.flatnonzero(ok)
    nearest = idx[np.abs(np.arange(len(matrices))[:, None] - idx[None, :]).argmin(axis=1)]
    return matrices[nearest]


def _scaled(m224: np.ndarray, size: int) -> np.ndarray:
    from ..face.alignment import FaceAlignment

    return FaceAlignment(frame_index=0, valid=True, matrix=m224).matrix_for(size)


def _psnr_db(mse: float) -> float:
    return PSNR_CEILING_DB if mse <= 0 else min(PSNR_CEILING_DB, 10 * np.log10(255.0**2 / mse))


def measure_shot(
    source: str | Path,
    start_frame: int,
    end_frame: int,
    dubbed: str | Path,
    *,
    shot_id: str = "shot",
    passthrough: Sequence[Any] = (),
    embedder=None,
    sync_expert=None,
    dub_cut_s: float = 0.0,
    occlusion_every: int = 10,
) -> ShotMeasures:
    """All metrics of one dubbed shot; ``embedder``/``sync_expert`` None leave ID-*/LSE-* out."""
    from ..face import FaceSelector, warp_crop
    from ..face.masks import lower_face_mask
    from ..media import iter_frames, load_audio, load_audio_for_frames, probe_video
    from ..render import track_shot

    src = probe_video(source)
    dub = probe_video(dubbed)
    n = end_frame - start_frame
    if dub.frame_count != n:
        raise ValueError(f"{dub.path.name} has {dub.frame_count} frames, the source range {n}")
    fps = float(src.rate)
    selector = FaceSelector.largest()
    src_track = track_shot(src, start_frame, end_frame, selector=selector, lsd_size=64, progress=None, should_cancel=None)
    dub_track = track_shot(dub, 0, n, selector=selector, lsd_size=64, progress=None, should_cancel=None)
    pt = [p if isinstance(p, dict) else {"start_frame": p.start_frame, "end_frame": p.end_frame, "reason": p.reason} for p in passthrough]
    passed = np.zeros(n, bool)
    for p in pt:
        passed[p["start_frame"] : p["end_frame"]] = True

    has_face = np.array([s == "ok" for s in src_track.status])
    filled = _fill_matrices(src_track.matrices)
    face_src, face_dub, lip_src, lip_dub = [], [], [], []
    mse_in, mse_out, ssim_in, ssim_out = (np.full(n, np.nan) for _ in range(4))
    occlusion = np.full(n, np.nan)
    strip_at = set(np.linspace(0, n - 1, STRIP_FRAMES).round().astype(int).tolist()) if n else set()
    strip: list[dict] = []
    hands = HandOcclusionDetector(static=True)
    try:
        for k, ((_, a), (_, b)) in enumerate(zip(iter_frames(src, start_frame, end_frame), iter_frames(dub), strict=True)):
            m = filled[k]
            if not np.isfinite(m).all():  # no face anywhere in the shot
                continue
            lip_src.append(warp_crop(a, _scaled(m, 224), 224) if sync_expert else None)
            lip_dub.append(warp_crop(b, _scaled(m, 224), 224) if sync_expert else None)
            if embedder is not None:
                face_src.append(warp_crop(a, _scaled(m, 160), 160))
                face_dub.append(warp_crop(b, _scaled(m, 160), 160))
            if k % occlusion_every == 0:
                lm = src_track.landmarks[k] if has_face[k] else None
                occlusion[k] = 0 if lm is None else hands.count(a, lm)
            if not has_face[k]:
                continue
            m224 = src_track.matrices[k]
            ca, cb = warp_crop(a, m224, 224), warp_crop(b, m224, 224)
            mask = lower_face_mask(src_track.landmarks[k], m224, 224) > 0.5
            mse_in[k] = float(((ca.astype(np.float64) - cb) ** 2)[mask].mean())
            ssim_in[k] = M.ssim(ca, cb, mask)
            # outside: the whole frame beyond the mask grown by the paste-back feather, at ≤ 640 px for speed
            grown = cv2.dilate(mask.astype(np.uint8), np.ones((17, 17), np.uint8))
            frame_mask = cv2.warpAffine(grown, m224, (src.width, src.height), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST) > 0
            scale = min(1.0, 640.0 / max(src.width, src.height))
            if scale < 1:
                size = (round(src.width * scale), round(src.height * scale))
                a_s, b_s = cv2.resize(a, size, interpolation=cv2.INTER_AREA), cv2.resize(b, size, interpolation=cv2.INTER_AREA)
                fm_s = cv2.resize(frame_mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
            else:
                a_s, b_s, fm_s = a, b, frame_mask
            out = ~frame_mask
            mse_out[k] = float(((a.astype(np.float64) - b) ** 2)[out].mean()) if out.any() else np.nan
            ssim_out[k] = M.ssim(a_s, b_s, ~fm_s)
            if k in strip_at:
                m_wide = _scaled(m224, 160)
                before, after = warp_crop(a, m_wide, 160), warp_crop(b, m_wide, 160)
                mk = lower_face_mask(src_track.landmarks[k], m_wide, 160)
                overlay = after.copy()
                overlay[mk > 0.5] = (0.55 * overlay[mk > 0.5] + 0.45 * np.array([255, 40, 40])).astype(np.uint8)
                # mouth crops: the lower 55 % of the face crop
                strip.append({"frame": k, "before": before[72:], "after": after[72:], "matte": overlay})
    finally:
        hands.close()

    res = ShotMeasures(shot_id=shot_id, source=str(src.path), start_frame=start_frame, end_frame=end_frame,
                       dubbed=str(dub.path), fps=round(fps, 4), passthrough=pt, strip=strip)
    S, R = res.summary, res.real
    S["frames"] = n
    S["passthrough_fraction"] = round(float(passed.mean()) if n else 0.0, 4)
    S["psnr_in"] = _psnr_db(float(np.nanmean(mse_in))) if np.isfinite(mse_in).any() else None
    S["psnr_out"] = _psnr_db(float(np.nanmean(mse_out))) if np.isfinite(mse_out).any() else None
    S["ssim_in"] = float(np.nanmean(ssim_in)) if np.isfinite(ssim_in).any() else None
    S["ssim_out"] = float(np.nanmean(ssim_out)) if np.isfinite(ssim_out).any() else None

    # sync proxy: the dub's mouth against the dub's sound; the source's against its own
    dub_audio = load_audio(dub.path, sample_rate_hz=16000) if dub.has_audio else np.zeros(int(n / fps * 16000), np.float32)
    src_audio = load_audio_for_frames(src, start_frame, end_frame) if src.has_audio else np.zeros_like(dub_audio)
    dub_open = mouth_opening(dub_track.landmarks)
    src_open = mouth_opening(src_track.landmarks)
    env_dub = energy_envelope(dub_audio, 16000, n, fps)
    env_src = energy_envelope(src_audio, 16000, n, fps)
    proxy = sync_proxy(dub_open, env_dub)
    proxy_real = sync_proxy(src_open, env_src)
    S["sync_proxy"], S["sync_proxy_best"], S["sync_proxy_lag"] = proxy.correlation, proxy.best_correlation, proxy.best_lag
    R["sync_proxy"], R["sync_proxy_best"], R["sync_proxy_lag"] = proxy_real.correlation, proxy_real.best_correlation, proxy_real.best_lag
    # does the dub's mouth follow its line or the original's (the figures the render's QC and `edidub check` give)
    lips = lip_sync_figures(src_open, dub_open, loudness_db(dub_audio, src.rate, n), loudness_db(src_audio, src.rate, n))
    for key in ("copy_corr", "open_change", "sync_dub", "sync_orig", "silent_open_out", "silent_open_src"):
        S[key] = np.nan if getattr(lips, key) is None else getattr(lips, key)
    R["sync_orig"] = np.nan if lips.source_sync_orig is None else lips.source_sync_orig
    res.warnings += [f"lip sync: {reason}" for reason in lip_sync_reasons(lips)]

    per = res.per_frame
    per["tracking"] = [STATUS_CONFIDENCE.get(s, 0.0) for s in src_track.status]
    per["mouth_open_dub"] = _finite_list(dub_open)
    per["mouth_open_src"] = _finite_list(src_open)
    per["energy_dub_db"] = _finite_list(env_dub, 2)
    per["psnr_in"] = [None if not np.isfinite(v) else round(_psnr_db(v), 3) for v in mse_in]
    per["ssim_in"] = _finite_list(ssim_in)
    per["occlusion"] = _finite_list(occlusion, 0)

    if embedder is not None and face_src:
        e_src = embedder.embed(np.stack(face_src))
        e_dub = embedder.embed(np.stack(face_dub))
        valid = has_face[np.isfinite(filled).all(axis=(1, 2))]
        e_src[~valid] = np.nan
        e_dub[~valid] = np.nan
        idp = M.id_preservation(e_src, e_dub)
        idtc = M.id_temporal_consistency(e_dub)
        S["id_p"], S["id_tc"] = idp.value, idtc.value
        R["id_p"], R["id_tc"] = M.id_preservation(e_src, e_src).value, M.id_temporal_consistency(e_src).value
        per["id_p"], per["id_tc"] = _finite_list(idp.per_frame), _finite_list(idtc.per_frame)
    if sync_expert is not None and len(lip_dub) >= 5 + 2:
        for target, crops, audio in ((S, lip_dub, dub_audio), (R, lip_src, src_audio)):
            v = sync_expert.embed_video(np.stack(crops))
            au = sync_expert.embed_audio(audio, len(crops), fps)
            score = M.lse(v, au)
            target["lse_d"], target["lse_c"], target["sync_offset"] = score.lse_d, score.lse_c, score.offset

    # warnings (pictures say more, but a supervisor reads these first)
    occ = occlusion[np.isfinite(occlusion)]
    if occ.size and occ.sum() > 0:
        frames = [int(k) for k in np.flatnonzero(np.nan_to_num(occlusion) >= 3)]
        if frames:
            res.warnings.append(f"occlusion: a hand covers the face at frame(s) {_ranges_text(frames)} "
                                f"({int(occ.sum())} landmarks in total over sampled frames)")
    poses = [head_pose(src_track.landmarks[k]).max_abs_deg for k in range(n) if has_face[k]]
    if poses and max(poses) > EXTREME_POSE_DEG:
        res.warnings.append(f"extreme pose: the head turns to {max(poses):.0f}° (over {EXTREME_POSE_DEG:g}°)")
    heights = [float(np.ptp(src_track.landmarks[k][:, 1])) for k in range(n) if has_face[k]]
    if heights and np.median(heights) < SMALL_FACE_PX:
        res.warnings.append(f"small face: about {np.median(heights):.0f} px tall (under {SMALL_FACE_PX} px); detail is limited")
    if dub_cut_s > 0:
        res.warnings.append(f"dub longer than shot: {dub_cut_s:.2f} s of the dub line run past the last frame and were cut")
    if not has_face.any():
        res.warnings.append("no face was tracked in this shot")
    for p in pt:
        res.warnings.append(f"passed through frames {p['start_frame']}-{p['end_frame'] - 1}: {p['reason'].replace('_', ' ')}")
    for d in (S, R):
        for key, v in list(d.items()):
            if isinstance(v, (float, np.floating)):
                d[key] = None if not np.isfinite(v) else round(float(v), 5)
    return res


def _ranges_text(frames: list[int]) -> str:
    out: list[list[int]] = []
    for f in frames:
        if out and f - out[-1][1] <= 10:
            out[-1][1] = f
        else:
            out.append([f, f])
    return ", ".join(f"{a}-{b}" if b > a else str(a) for a, b in out)


__all__ = ["ShotMeasures", "measure_shot"]
