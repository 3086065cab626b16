"""Throughput of the CPU stages around the diffusion models, on a 1080p clip.

Prints frames per second for decode, face tracking, crop+mask, paste-back and
ProRes 422 HQ encode, each timed alone on the same frames, and the encode
thread's whole work per edited frame through 8-bit RGB (the old path) and in the
source's own pixels (decode, change into the planes, encode), then streams the
whole chain over the clip and prints peak memory and how resident memory moved
between the first quarter and the end (it must not grow with the shot).

    .venv/bin/python benchmarks/cpu_stages.py [--clip PATH] [--frames N] [--json out.json]

The aim (issue 2): every stage at least 60 fps at 1080p on 2 cores, so a GPU never waits.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("GLOG_minloglevel", "2")
DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "footage" / "mead_M003_disgusted.mp4"


def rss_mib(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def timed(label: str, n: int, fn) -> dict:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    fps = n / seconds if seconds else float("inf")
    print(f"{label:<22} {fps:8.1f} fps   ({n} frames in {seconds:.2f} s)")
    return {"stage": label, "frames": n, "seconds": round(seconds, 4), "fps": round(fps, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--frames", type=int, default=100, help="frames held in memory for the per-stage timings")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.clip.is_file():
        print(f"clip not found: {args.clip} (give --clip PATH to a 1080p talking-head clip)", file=sys.stderr)
        return 2

    import torch

    from edidub_engine.face import (
        FaceTracker,
        feathered_matte,
        lower_face_mask,
        paste_back,
        smooth_alignments,
        track_and_align,
        warp_crop,
    )
    from edidub_engine.media import ClipWriter, Codec, iter_frames, probe_video

    info = probe_video(args.clip)
    n = min(args.frames, info.frame_count)
    print(f"clip {info.path.name}: {info.width}x{info.height} {info.codec} at {info.rate} fps, "
          f"{info.frame_count} frames; {os.cpu_count()} cores, torch threads {torch.get_num_threads()}")
    results = []

    results.append(timed("decode", info.frame_count, lambda: sum(1 for _ in iter_frames(info))))
    frames = [frame for _, frame in iter_frames(info, 0, n)]

    observations = []

    def track():
        with FaceTracker() as tracker:
            observations.extend(tracker.process(frame, i) for i, frame in enumerate(frames))

    results.append(timed("track", n, track))
    alignments = smooth_alignments(observations)
    valid = [(f, o, a) for f, o, a in zip(frames, observations, alignments) if a.valid]
    crops: list[tuple] = []

    def crop_and_mask():
        for frame, obs, al in valid:
            m224, m64 = al.matrix_for(224), al.matrix_for(64)
            crop = warp_crop(frame, m224, 224)
            warp_crop(frame, m64, 64)
            mask = lower_face_mask(obs.landmarks, m224, 224)
            lower_face_mask(obs.landmarks, m64, 64)
            crops.append((frame, crop, m224, feathered_matte(mask, feather_px=8)))

    results.append(timed("crop+mask (224+64)", len(valid), crop_and_mask))

    def paste():
        for frame, crop, matrix, matte in crops:
            edited = crop.copy()
            edited[140:200, 60:164] //= 2  # a visible mouth edit, so the full composite path runs
            paste_back(frame, edited, crop, matrix, matte)

    results.append(timed("paste-back", len(crops), paste))

    with tempfile.TemporaryDirectory() as tmp:
        def encode():
            with ClipWriter(Path(tmp) / "bench.mov", width=info.width, height=info.height, rate=info.rate,
                            codec=Codec.PRORES_HQ, timecode=info.start_timecode) as writer:
                for frame in frames:
                    writer.write(frame)

        results.append(timed("encode ProRes 422 HQ", n, encode))

        # The encode thread's whole work per edited frame, both ways (issue 20): the RGB path decoded to 8-bit
        # RGB, pasted back and encoded from RGB; the native path decodes the source's own pictures, converts to RGB
        # once (QC and the g term), puts only the change into the planes and encodes from them.
        from edidub_engine.face import apply_change, paste_change
        from edidub_engine.media import NativePicture, iter_pictures, to_rgb

        def edit(crop):
            edited = crop.copy()
            edited[140:200, 60:164] //= 2
            return edited

        edits = {i: (crop, edit(crop), matrix, matte) for i, (_, crop, matrix, matte) in enumerate(crops)}

        def rgb_path():
            with ClipWriter(Path(tmp) / "rgb.mov", width=info.width, height=info.height, rate=info.rate,
                            codec=Codec.PRORES_HQ, color=info.color) as writer:
                for i, frame in iter_frames(info, 0, len(edits)):
                    crop, edited, matrix, matte = edits[i]
                    writer.write(paste_back(frame, edited, crop, matrix, matte))

        def native_path():
            with ClipWriter(Path(tmp) / "native.mov", width=info.width, height=info.height, rate=info.rate,
                            codec=Codec.PRORES_HQ, color=info.color, source_format=info.pix_fmt) as writer:
                for i, picture in iter_pictures(info, 0, len(edits)):
                    crop, edited, matrix, matte = edits[i]
                    frame = to_rgb(picture)
                    change = paste_change(frame, edited, crop, matrix, matte)
                    apply_change(frame, change)  # the RGB composite the QC measures
                    own = NativePicture(picture, info.color)
                    own.add_change(*change)
                    writer.write_picture(own.to_frame())

        results.append(timed("render: RGB path", len(edits), rgb_path))
        results.append(timed("render: native path", len(edits), native_path))
    del frames, crops, valid, observations

    # Streaming chain over the whole clip: memory must not follow the shot's length.
    quarter = max(1, info.frame_count // 4)
    memory = {}
    with tempfile.TemporaryDirectory() as tmp, FaceTracker() as tracker:
        with ClipWriter(Path(tmp) / "chain.mov", width=info.width, height=info.height, rate=info.rate,
                        codec=Codec.PRORES_HQ, timecode=info.start_timecode) as writer:
            t0 = time.perf_counter()
            for tracked in track_and_align(iter_frames(info), tracker=tracker):
                frame = tracked.frame
                if tracked.alignment.valid:
                    m = tracked.alignment.matrix_for(224)
                    crop = warp_crop(frame, m, 224)
                    matte = feathered_matte(lower_face_mask(tracked.observation.landmarks, m, 224), feather_px=8)
                    frame = paste_back(frame, crop, crop, m, matte)
                writer.write(frame)
                if tracked.frame_index + 1 == quarter:
                    memory["rss_after_quarter_mib"] = round(rss_mib(), 1)
            chain_s = time.perf_counter() - t0
    memory["rss_at_end_mib"] = round(rss_mib(), 1)
    memory["peak_rss_mib"] = round(rss_mib("VmHWM"), 1)
    print(f"{'chain (streaming)':<22} {info.frame_count / chain_s:8.1f} fps   ({info.frame_count} frames in {chain_s:.2f} s)")
    print(f"memory: RSS after 1/4 of the clip {memory['rss_after_quarter_mib']} MiB, at the end "
          f"{memory['rss_at_end_mib']} MiB; peak {memory['peak_rss_mib']} MiB (includes the {n} frames held for the stage timings)")
    if args.json:
        args.json.write_text(json.dumps({"clip": str(info.path), "stages": results, "memory": memory,
                                         "chain_fps": round(info.frame_count / chain_s, 2)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
