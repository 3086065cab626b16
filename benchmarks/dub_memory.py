"""Peak memory of a dub for a short and a long 1080p shot: it must not follow the shot's length.

Issue 12's criterion: a 10-minute 1080p shot dubs with peak host memory within
20 % of a 10-second shot's. For each length this builds a synthetic 1080p
talking-head shot (the MEAD clip played forwards and backwards, no cuts, with
the clip's sound looped under it), dubs it in a fresh process with few
diffusion steps to ProRes HQ, with a dub line as long as the shot (the JFK clip
placed every 11 s: many ``dub_audio`` segments), and prints frames, wall time
and peak resident memory (VmHWM) per length, then the longest/shortest peak
ratio and PASS/FAIL against ``--limit``.

    .venv/bin/python benchmarks/dub_memory.py [--seconds 10 600] [--models BUNDLE] [--steps 1] [--limit 1.2] [--tmp DIR] [--json out.json]

Without --models a tiny random bundle is built (memory and speed of the plumbing,
not picture quality). The 600 s case writes about 13 GB of ProRes HQ (deleted
after its run) and a ~1 GB H.264 source under --tmp.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from _common import FOOTAGE, environment, rss_mib, write_json

SOURCE = FOOTAGE / "mead_M003_disgusted.mp4"
DUB_LINE = FOOTAGE / "dub_en_jfk.flac"  # 11.0 s


def make_shot(path: Path, seconds: float) -> int:
    """Write a synthetic 1080p shot of ``seconds``; returns its frame count.

    Fast for 10 minutes: one ping-pong cycle of the clip (forwards, then
    backwards without repeating the ends: continuous motion, no cut) is
    encoded once with libx264 ultrafast, B-frames off so every packet decodes
    from the cycle's own IDR frame; later cycles re-mux those packets with
    shifted timestamps. Only one cycle's frames (then its packets) are held.
    The clip's sound is looped under the picture as AAC.
    """
    import av

    from edidub_engine.media import iter_frames, load_audio, probe_video

    source = probe_video(SOURCE)
    rate = Fraction(source.rate)
    total = int(round(seconds * rate))
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "bframes": "0"})
        video.width, video.height, video.pix_fmt = source.width, source.height, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="mono")
        frames = [av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p") for _, f in iter_frames(source)]
        cycle = frames + frames[-2:0:-1]
        packets = []
        for i, frame in enumerate(cycle[:total]):
            frame.pts = i
            packets += video.encode(frame)
        packets += video.encode(None)
        del frames, cycle
        kept = [(bytes(p), p.pts, p.dts, p.is_keyframe, p.time_base) for p in packets]
        for p in packets:
            out.mux(p)
        period = len(kept)  # frames per cycle; pts are in 1/rate ticks of the packets' time base
        for start in range(period, total, period):
            for data, pts, dts, key, tb in kept[: total - start]:
                shift = int(start / rate / tb)
                p = av.Packet(data)
                p.pts, p.dts, p.time_base, p.stream, p.is_keyframe = pts + shift, dts + shift, tb, video, key
                out.mux(p)
        sound = load_audio(SOURCE, sample_rate_hz=48000)
        samples = int(round(total / rate * 48000))
        for at in range(0, samples, 1024):
            block = sound[np.arange(at, min(at + 1024, samples)) % len(sound)]
            frame = av.AudioFrame.from_ndarray(block[None].astype(np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, at
            for p in audio.encode(frame):
                out.mux(p)
        for p in audio.encode(None):
            out.mux(p)
    return total


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
    """Dub one shot in this (fresh) process to ProRes HQ; print frames, wall time and peak RSS as JSON."""
    from edidub_engine.config import DubSettings
    from edidub_engine.media import probe_video
    from edidub_engine.render import LoadedModels, ShotRenderer
    from edidub_engine.shot import ShotRequest

    info = probe_video(video)
    shot_s = float(Fraction(info.frame_count) / Fraction(info.rate))
    line_s = 11.0
    segments = [{"path": str(DUB_LINE), "offset_s": k * line_s} for k in range(math.ceil(shot_s / line_s))]
    request = ShotRequest.from_dict({
        "shot_id": "bench", "source": {"path": video, "start_frame": 0, "end_frame": info.frame_count},
        "dub_audio": segments,
        "output": {"dir": str(Path(out).parent), "name": Path(out).stem, "codec": "prores_hq"},
        "options": {"steps": steps, "inversion_steps": steps},
    })
    t0 = time.perf_counter()
    loaded = LoadedModels.load(models)
    renderer = ShotRenderer(loaded, settings=DubSettings().with_overrides(**{**loaded.info.defaults, "srd_steps": steps}))
    clip = renderer.dub_shot(request)
    wall = time.perf_counter() - t0
    print(json.dumps({"frames": info.frame_count, "wall_s": round(wall, 1), "peak_rss_mib": round(rss_mib("VmHWM"), 1),
                      "edited": clip.frames_edited, "dub_segments": len(segments), "codec": request.output.codec,
                      "output_mib": round(Path(clip.path).stat().st_size / 2**20, 1), "timings": clip.qc.get("timings")}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 600], help="shot lengths (default 10 600)")
    parser.add_argument("--models", help="model bundle (default: a tiny random one)")
    parser.add_argument("--steps", type=int, default=1, help="inversion, sampling and SRD steps (default 1)")
    parser.add_argument("--limit", type=float, default=1.20, help="longest/shortest peak RSS must stay within this (default 1.20)")
    parser.add_argument("--tmp", type=Path, default=None, help="folder for the synthetic shots and outputs (default: system temp)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], int(args.child[3]))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        tmp = Path(tmp)
        models = args.models or str(make_tiny_bundle(Path(tempfile.mkdtemp(dir=tmp))))
        for seconds in sorted(args.seconds):
            video, out = tmp / f"shot_{seconds:g}s.mp4", tmp / f"out_{seconds:g}s.mov"
            t0 = time.perf_counter()
            make_shot(video, seconds)
            made_s = time.perf_counter() - t0
            proc = subprocess.run([sys.executable, __file__, "--child", str(video), models, str(out), str(args.steps)],
                                  capture_output=True, text=True)
            video.unlink()
            out.unlink(missing_ok=True)  # the 600 s ProRes HQ is ~13 GB: keep one at a time
            if proc.returncode:
                print(proc.stderr[-3000:], file=sys.stderr)
                return proc.returncode
            row = {"seconds": seconds, "source_made_s": round(made_s, 1), **json.loads(proc.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{seconds:>6g} s 1080p shot ({row['frames']} frames, {row['edited']} edited, {row['dub_segments']} dub segments; "
                  f"made in {made_s:.1f} s): {row['wall_s']} s wall ({row['frames'] / row['wall_s']:.1f} fps), "
                  f"peak RSS {row['peak_rss_mib']} MiB, {row['codec']} {row['output_mib']} MiB", flush=True)
    ratio = rows[-1]["peak_rss_mib"] / rows[0]["peak_rss_mib"]
    passed = ratio <= args.limit
    print(f"peak RSS {rows[-1]['seconds']:g} s / {rows[0]['seconds']:g} s = {ratio:.3f} "
          f"(limit {args.limit:.2f}): {'PASS' if passed else 'FAIL'}")
    if args.json:
        write_json(args.json, {"environment": environment(), "steps": args.steps, "models": args.models or "tiny random bundle",
                               "rows": rows, "peak_ratio": round(ratio, 4), "limit": args.limit, "pass": passed})
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
