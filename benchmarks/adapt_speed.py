"""Actor adaptation speed: seconds per training step, seconds per validation, and the time to the validation plateau.

Adapts the default bundle (or ``--base``) on one shared clip with its own speech for ``--steps`` steps,
validating every ``--validate-every`` steps, and prints the figures; on a GPU machine pass ``--device cuda``.

    .venv/bin/python benchmarks/adapt_speed.py [--clip PATH[@START-END]] [--steps 300] [--validate-every 100] [--device cpu]

The plateau is the step of the best validation figure (the adaptation keeps those weights), and its
time is measured from the first training step.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CLIP = Path(__file__).resolve().parents[2] / "shared" / "footage" / "latentsync_demo2.mp4"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=f"{DEFAULT_CLIP}@0-335", help="PATH or PATH@START-END (default: latentsync_demo2, first two thirds)")
    parser.add_argument("--base", default=None, help="bundle to adapt (default: as edidub dub)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--validate-every", type=int, default=100)
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from edidub_engine.training.adapt import adapt_bundle, parse_clip

    clip = parse_clip(args.clip)
    if not clip.path.is_file():
        print(f"clip not found: {clip.path}", file=sys.stderr)
        return 2
    stamps: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = adapt_bundle([clip], Path(tmp) / "actor", base=args.base, steps=args.steps, validate_every=args.validate_every,
                              device=args.device, on_step=lambda done, _total: stamps.append((done, time.perf_counter())),
                              log=lambda line: print(f"  {line}", flush=True))
    total = time.perf_counter() - t0
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU, {torch.get_num_threads()} torch threads"
    per_chunk = [(b - a) for (_, a), (_, b) in zip(stamps, stamps[1:])]
    chunk_s = sum(per_chunk) / len(per_chunk) if per_chunk else float("nan")
    figures = {
        "device": name, "steps": result.steps, "seconds_total": round(total, 1), "training_seconds": round(result.seconds, 1),
        "seconds_per_chunk": round(chunk_s, 2), "steps_per_chunk": args.validate_every,
        "seconds_per_step_with_validation": round(result.seconds / max(1, result.steps), 3),
        "validation_before_db": round(result.before_db, 2), "validation_best_db": round(result.best_db, 2),
        "plateau_step": result.best_step,
        "plateau_seconds": round(next((t for s, t in stamps if s == result.best_step), t0) - (stamps[0][1] - chunk_s if stamps else t0), 1),
        "history": result.history,
    }
    print(f"{name}: {figures['seconds_per_step_with_validation']} s per step (validation included), "
          f"{chunk_s:.1f} s per {args.validate_every}-step chunk; validation {result.before_db:.2f} -> {result.best_db:.2f} dB, "
          f"best at step {result.best_step} ({figures['plateau_seconds']} s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
