"""PSNR inside the lower-face mask: the SRD's restoration against plain bicubic upsampling.

For frames of a shared clip: track the face, take the aligned crop at the SRD's side (the
224 px crop reduced by area averaging, as training does) and its lower-face mask; make the
low-resolution input as an LSD output would be (area-reduced to ``--low-res`` px, default
half the SRD side, then bicubic back up); then

* bicubic: that upsampled input itself;
* SRD: the bundle's SRD sampling the masked region (DDIM, ``--steps``), conditioned on the
  upsampled input, the frames outside the mask given; from pure noise, or part-way from the
  noised upsample when its ``sampling.json`` (or ``--strength``) gives a strength below 1;

and report the PSNR of each against the original crop, inside the mask only (values in
[-1, 1], peak-to-peak 2), over all frames. An SRD that loses here should not run
(``edidub check`` decides that for the renderer).

    .venv/bin/python benchmarks/srd_psnr.py [--bundle DIR] [--clip FILE] [--start N] [--frames N] [--steps N] [--strength S] [--seed N] [--json OUT]

Default bundle: ``resolve_bundle()`` (``$EDIDUB_MODELS``, user folder, then the shipped starter);
default clip: ``real3d_may_5s.mp4`` from the shared footage — not one of the starter's training clips.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

FOOTAGE = Path(__file__).resolve().parents[2] / "shared" / "footage"


def psnr_inside(a, b, mask) -> float:
    """PSNR (dB) of ``a`` against ``b`` ([N, 3, T, H, W] in [-1, 1]) over the pixels where ``mask`` ([N, 1, T, H, W]) is 1."""
    import torch

    mse = (((a - b) * mask) ** 2).sum() / (mask.sum() * a.shape[1])
    return float(10 * torch.log10(4.0 / mse))


def load_crops(clip: Path, *, start: int, frames: int, size: int):
    """``video`` [1, 3, T, size, size] in [-1, 1] and ``mask`` [1, 1, T, size, size] of the tracked face."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from edidub_engine.face import FaceTracker, lower_face_mask, track_and_align, warp_crop
    from edidub_engine.media import iter_frames, probe_video

    info = probe_video(clip)
    crops, masks = [], []
    with FaceTracker() as tracker:
        for tracked in track_and_align(iter_frames(info, start, min(start + frames, info.frame_count)), tracker=tracker):
            if not tracked.alignment.valid:
                continue
            matrix = tracked.alignment.matrix_for(224)
            crops.append(warp_crop(tracked.frame, matrix, 224))
            masks.append(lower_face_mask(tracked.observation.landmarks, matrix, 224))
    if not crops:
        raise SystemExit(f"no face tracked in {clip} frames {start}-{start + frames - 1}")
    video = torch.from_numpy(np.stack(crops)).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)  # [3, T, 224, 224]
    mask = torch.from_numpy(np.stack(masks)).float()[None]  # [1, T, 224, 224]
    if size != 224:  # as the training datasets do (``source_size``)
        video = F.interpolate(video.transpose(0, 1), size=(size, size), mode="area").transpose(0, 1)
        mask = (F.interpolate(mask.transpose(0, 1), size=(size, size), mode="area").transpose(0, 1) >= 0.5).float()
    return video[None].contiguous(), mask[None].contiguous()


def run(*, bundle: str | None = None, clip: str | Path | None = None, start: int = 0, frames: int = 10, steps: int = 25,
        low_res: int | None = None, seed: int = 0, strength: float | None = None) -> dict:
    """The benchmark's figures as a dict (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion, from_residual, to_residual
    from edidub_engine.models import load_model
    from edidub_engine.models.bundle import read_bundle, resolve_bundle
    from edidub_engine.training.trainer import make_denoiser

    info = read_bundle(resolve_bundle(bundle))
    model = load_model(info.srd_dir)
    size = int(model.config.sample_size)
    side = int(low_res or size // 2)
    strength = float(strength or info.sampling("srd").strength or 1.0)
    clip = Path(clip) if clip else FOOTAGE / "real3d_may_5s.mp4"
    video, mask = load_crops(clip, start=start, frames=frames, size=size)
    t = video.shape[2]
    small = F.interpolate(video[0].transpose(0, 1), size=(side, side), mode="area")
    up = F.interpolate(small, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1).transpose(0, 1)[None]
    window = min(5, t)
    process = MaskedDiffusion(config=DiffusionConfig(inference_steps=steps, inversion_steps=steps, guidance_scale=1.0,
                                                     window_frames=window, window_stride=max(1, window // 2),
                                                     section_frames=max(t, window), carry_frames=0))
    sampling = info.sampling("srd")
    residual, scale = sampling.target == "residual", float(sampling.residual_scale or 1.0)
    t0 = time.perf_counter()
    with torch.no_grad():
        target = to_residual(video, up, scale) if residual else video  # an SRD trained on the residual over bicubic
        noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(seed)) * float(
            1.0 if sampling.start_noise is None else sampling.start_noise)
        out = process.sample(make_denoiser(model, "srd"), target, mask, {"low_res": up}, latent=noise,
                             init=torch.zeros_like(up) if residual else up, strength=strength)
        if residual:
            out = torch.where(mask.bool(), from_residual(out, up, scale), video)
    seconds = time.perf_counter() - t0
    return {
        "bundle": info.name, "bundle_path": str(info.path), "clip": clip.name, "start_frame": start, "frames": t,
        "size": size, "low_res": side, "steps": steps, "strength": strength, "target": sampling.target or "image", "seed": seed, "mask_fraction": float(mask.mean()),
        "psnr_bicubic_db": psnr_inside(up, video, mask), "psnr_srd_db": psnr_inside(out, video, mask),
        "srd_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=None, help="bundle folder (default: resolve_bundle())")
    parser.add_argument("--clip", default=None, help="video file (default: shared footage real3d_may_5s.mp4)")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps (default 25)")
    parser.add_argument("--low-res", type=int, default=None, help="low-resolution side (default: half the SRD's)")
    parser.add_argument("--strength", type=float, default=None,
                        help="start part-way from the noised upsample (default: the bundle's sampling.json, else 1: from noise)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    r = run(bundle=args.bundle, clip=args.clip, start=args.start, frames=args.frames, steps=args.steps, low_res=args.low_res, seed=args.seed,
            strength=args.strength)
    print(f"{r['bundle']} SRD on {r['clip']} frames {r['start_frame']}-{r['start_frame'] + r['frames'] - 1}, {r['size']} px from "
          f"{r['low_res']} px, {r['steps']} DDIM steps at strength {r['strength']:g}, mask {100 * r['mask_fraction']:.0f}% of the crop")
    print(f"  PSNR inside the mask: bicubic {r['psnr_bicubic_db']:.2f} dB, SRD {r['psnr_srd_db']:.2f} dB "
          f"({r['psnr_srd_db'] - r['psnr_bicubic_db']:+.2f} dB; SRD {r['srd_seconds']:.1f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
