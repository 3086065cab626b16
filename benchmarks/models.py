"""Size, cost and CPU speed of the LSD and SRD networks, per preset.

Prints, per preset and input: parameters, FLOPs of one forward pass and per
frame (``torch.utils.flop_counter.FlopCounterMode`` on a weightless meta twin,
attention counted through its matmuls; a multiply-add counts 2), the best of N
CPU forward passes under ``torch.no_grad``, and for the tiny presets one
training step (forward, plain MSE, backward, AdamW) at batch 1. Random
weights: speed does not depend on them.

    .venv/bin/python benchmarks/models.py [--presets lsd-paper,srd-paper,lsd-tiny,srd-tiny] [--repeats N] [--threads N] [--json out.json]

Inputs: the paper's windows — LSD 1×7×24×64×64 (24-frame MultiDiffusion
window), SRD 1×7×5×224×224 (5-frame window) — and for the tiny presets their
own sizes (LSD 24×32×32, SRD 5×64×64).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import best_of

INPUTS = {
    "lsd-paper": (1, 7, 24, 64, 64),
    "srd-paper": (1, 7, 5, 224, 224),
    "lsd-tiny": (1, 7, 24, 32, 32),
    "srd-tiny": (1, 7, 5, 64, 64),
}
TRAIN_STEP = ("lsd-tiny", "srd-tiny")


def measure(name: str, repeats: int) -> dict:
    import torch

    from edidub_engine.models import build_model, count_flops, count_parameters

    shape = INPUTS[name]
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = build_model(name).eval()
    build_s = time.perf_counter() - t0
    params = count_parameters(model)
    flops = count_flops(model, shape)
    frames = shape[0] * shape[2]

    sample = torch.randn(shape)
    units = None if model.null_unit is None else torch.randint(0, model.null_unit, (shape[0], shape[2], 2))
    timestep = torch.full((shape[0],), 500)

    def forward():
        with torch.no_grad():
            model(sample, timestep, units)

    forward()  # warm-up: allocator and kernel selection
    forward_s = best_of(repeats, forward)
    row = {
        "preset": name,
        "input": list(shape),
        "parameters": params,
        "gflops_per_forward": flops / 1e9,
        "gflops_per_frame": flops / frames / 1e9,
        "forward_s": forward_s,
        "build_s": build_s,
    }
    if name in TRAIN_STEP:
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        target = torch.randn(shape[0], 3, *shape[2:])

        def step():
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(sample, timestep, units).sample, target).backward()
            optimizer.step()

        step()
        row["train_step_s"] = best_of(repeats, step)
    extra = f", train step {row['train_step_s']:.2f} s" if "train_step_s" in row else ""
    print(
        f"{name:>9} {'x'.join(map(str, shape))}: {params / 1e6:7.2f} M params, "
        f"{row['gflops_per_forward']:8.1f} GFLOPs/forward ({row['gflops_per_frame']:6.2f}/frame), "
        f"forward {forward_s:.2f} s{extra}",
        flush=True,
    )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default=",".join(INPUTS), help=f"comma-separated, from {', '.join(INPUTS)}")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import torch

    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = [n for n in names if n not in INPUTS]
    if unknown:
        parser.error(f"unknown presets {unknown}; choose from {', '.join(INPUTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, batch 1")
    rows = [measure(name, args.repeats) for name in names]
    cost = paper_cost_per_frame({row["preset"]: row for row in rows})
    if args.json:
        args.json.write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows, "per_output_frame": cost}, indent=2) + "\n")
    return 0


def paper_cost_per_frame(rows: dict[str, dict]) -> dict:
    """What one output frame costs at the paper's settings, in per-frame network passes and FLOPs.

    Every frame sits in window/stride = 2 MultiDiffusion windows at each step; LSD runs
    50 inversion steps (conditional only) and 50 sampling steps with guidance (conditional
    and null: 2 passes); SRD runs 50 sampling steps without guidance.
    """
    from edidub_engine.diffusion import DiffusionConfig

    cfg = DiffusionConfig()
    overlap = cfg.window_frames / cfg.window_stride
    lsd_passes = (cfg.inversion_steps + 2 * cfg.inference_steps) * overlap
    srd_passes = cfg.inference_steps * overlap
    out = {"overlap": overlap, "lsd_frame_passes": lsd_passes, "srd_frame_passes": srd_passes}
    print(f"one output frame at paper settings: LSD {lsd_passes:.0f} frame-passes "
          f"(({cfg.inversion_steps} inversion + 2x{cfg.inference_steps} guided sampling) x {overlap:.0f} overlapping windows), "
          f"SRD {srd_passes:.0f} frame-passes")
    if "lsd-paper" in rows and "srd-paper" in rows:
        tflops = (lsd_passes * rows["lsd-paper"]["gflops_per_frame"] + srd_passes * rows["srd-paper"]["gflops_per_frame"]) / 1e3
        out["tflops_per_output_frame"] = tflops
        print(f"  = {tflops:.1f} TFLOPs per output frame; 25 fps would need {25 * tflops:.0f} TFLOP/s sustained")
    return out


if __name__ == "__main__":
    sys.exit(main())
