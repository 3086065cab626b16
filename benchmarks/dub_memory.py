"""Peak memory of `edidub dub` for a short and a long 1080p shot: it must not follow the shot's length.

Builds a synthetic 1080p talking-head shot of each length by playing a MEAD clip
forwards and backwards (no cuts), dubs each in a fresh process with few diffusion
steps, and prints wall time and peak resident memory (VmHWM) per length.

    .venv/bin/python benchmarks/dub_memory.py [--seconds 10 60] [--models BUNDLE] [--steps 1]

Without --models a tiny random bundle is built (memory and speed of the plumbing,
not picture quality).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOOTAGE = ROOT.parent / "shared" / "footage"


def make_shot(path: Path, seconds: int) -> None:
    from edidub_engine.media import ClipWriter, Codec, iter_frames, probe_video

    source = probe_video(FOOTAGE / "mead_M003_disgusted.mp4")
    frames = [f for _, f in iter_frames(source)]
    cycle = frames + frames[-2:0:-1]  # ping-pong: continuous motion, no cut
    total = int(seconds * source.rate)
    with ClipWriter(path, width=source.width, height=source.height, rate=source.rate, codec=Codec.H264, timecode="01:00:00:00") as w:
        for i in range(total):
            w.write(cycle[i % len(cycle)])


def make_tiny_bundle(folder: Path) -> Path:
    import torch

    from edidub_engine.audio import fit_codebook, load_frontend
    from edidub_engine.models import build_model
    from edidub_engine.models.bundle import write_bundle_manifest

    codebook = fit_codebook(load_frontend("mel"), [FOOTAGE / "grid_bbaf2n.mpg"], clusters=8, max_vectors=5000, seed=0)
    codebook.save(folder / "codebook.safetensors")
    torch.manual_seed(0)
    build_model("lsd-tiny", num_units=9, base_channels=16, channel_mults=(1, 2), attention_resolutions=(16,)).save_pretrained(folder / "lsd")
    build_model("srd-tiny", base_channels=8, channel_mults=(1, 2), norm_num_groups=4).save_pretrained(folder / "srd")
    write_bundle_manifest(folder, name="bench-tiny", version="0", frontend="mel", card={"summary": "random weights"})
    return folder


def child(video: str, models: str, out: str, steps: int) -> None:
    """Run one dub in this process and print wall time and peak RSS as JSON."""
    from edidub_engine.render import LoadedModels, ShotRenderer
    from edidub_engine.shot import ShotRequest
    from edidub_engine.media import probe_video

    info = probe_video(video)
    request = ShotRequest.from_dict({
        "shot_id": "bench", "source": {"path": video, "start_frame": 0, "end_frame": info.frame_count},
        "dub_audio": [{"path": str(FOOTAGE / "dub_en_jfk.flac")}],
        "output": {"dir": str(Path(out).parent), "name": Path(out).stem, "codec": "prores_hq"},
        "options": {"steps": steps, "inversion_steps": steps},
    })
    t0 = time.perf_counter()
    renderer = ShotRenderer(LoadedModels.load(models))
    renderer.pipeline.settings = renderer.pipeline.settings.with_overrides(srd_steps=steps)
    clip = renderer.dub_shot(request)
    wall = time.perf_counter() - t0
    peak = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:"))
    print(json.dumps({"frames": info.frame_count, "wall_s": round(wall, 1), "peak_rss_mib": round(peak / 1024, 1),
                      "edited": clip.frames_edited}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--models", help="model bundle (default: a tiny random one)")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = args.models or str(make_tiny_bundle(Path(tempfile.mkdtemp(dir=tmp))))
        for seconds in args.seconds:
            video = tmp / f"shot_{seconds}s.mp4"
            make_shot(video, seconds)
            proc = subprocess.run([sys.executable, __file__, "--child", str(video), models, str(tmp / f"out_{seconds}s.mov"), str(args.steps)],
                                  capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-2000:], file=sys.stderr)
                return proc.returncode
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{seconds:>4} s 1080p shot ({row['frames']} frames, {row['edited']} edited): "
                  f"{row['wall_s']} s wall, peak RSS {row['peak_rss_mib']} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
