"""Speed suite (issue 12): per-stage fps on real footage, FLOPs and fast-path step times per config, peak memory.

Three parts, all figures also written with ``--json`` so two runs compare as ratios
(``benchmarks/compare.py before.json after.json``, or ``--compare`` here):

1. stages on a 1080p MEAD clip with the shipped starter bundle on the default
   fast path (``Acceleration.auto``): decode, track, crop+mask, speech units
   (per second of audio and as frames/s at the clip's rate), LSD inversion, LSD
   sampling, SRD, paste-back, ProRes HQ encode, and ``ShotRenderer.dub_shot``
   end to end at reduced steps; each with its own peak host (and GPU) memory;
2. per config (``paper``: random-weight lsd-paper + srd-paper at the paper's
   settings; ``starter``: the shipped bundle at its defaults): FLOPs per output
   frame, and the time of ONE diffusion step (LSD inversion, guided LSD sampling,
   SRD) on a section for each cumulative fast-path variant — reference,
   +batch_guidance, +batch_windows, +channels_last, +bf16, +compile — after a
   warm-up that is reported apart (it holds torch.compile's compilation), as a
   speed-up over the reference next to the step output's agreement with it,
   and the fps those step times imply at the config's step counts;
3. the machine: device and its name, torch, threads, git commit, date.

    .venv/bin/python benchmarks/suite.py [--configs paper,starter] [--variants reference,+batch_guidance,...]
        [--kinds lsd_invert,lsd_sample,srd_sample] [--frames N] [--repeats N] [--compile-mode MODE]
        [--stage-frames N] [--e2e-frames N] [--e2e-steps N] [--skip-stages] [--skip-hubert] [--threads N] [--json out.json]
    .venv/bin/python benchmarks/suite.py --quick --json benchmarks/results/quick.json   # ~2.5 min on 2 CPU cores
    .venv/bin/python benchmarks/suite.py --compare before.json after.json

FLOPs per output frame = LSD (inversion + 2 x sampling steps: guidance runs a
conditional and a null row) x windows covering each new frame of a long shot
(24/12 windows over 120-frame sections carrying 12: 2.0) x GFLOP per frame of a
24-frame window, + SRD steps x windows per frame of a 48-frame chunk (the
pipeline runs the SRD with the same 24/12 windows: 1.5) x its GFLOP per frame.
"Implied fps" applies the same counts to the measured step times.

On a 2-core CPU the paper config is slow (a 24-frame lsd-paper forward ~3.7 s,
a 24-frame srd-paper forward ~18 s): its default section is 48 frames (three
24-frame windows, the SRD's chunk size), and every variant runs each step kind
1 + ``--repeats`` times, so the full default run takes most of an hour there; it
is sized for a GPU. Under other load figures vary several-fold: compare runs
made on a quiet machine (``loadavg_1m`` is recorded).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from _common import FOOTAGE, STARTER, best_of, environment, memory, pick_device, reset_peaks, sync, write_json
from cpu_stages import DEFAULT_CLIP
from speech_units import HUBERT_LARGE
from speech_units import measure as measure_units
from srd_psnr import psnr_inside

# Cumulative: each variant is the one above plus one optimisation (Acceleration fields).
VARIANTS = {
    "reference": {},
    "+batch_guidance": {"batch_guidance": True},
    "+batch_windows": {"batch_windows": True},
    "+channels_last": {"channels_last": True},
    "+bf16": {"precision": "bf16"},
    "+compile": {"compile": "default"},
}
KINDS = ("lsd_invert", "lsd_sample", "srd_sample")
DEFAULT_FRAMES = {"paper": 48, "starter": 120}
DUB_AUDIO = FOOTAGE / "dub_fr_french1.wav"


# ----------------------------------------------------------------------------- part 1: stages
def mem_text(fig: dict) -> str:
    gpu = "" if fig["gpu_peak_mib"] is None else f", GPU peak {fig['gpu_peak_mib']:.0f} MiB"
    return f"peak RSS {fig['peak_rss_mib']:.0f} MiB{gpu}"


class Stages:
    """Times stages one after another, each the best of ``repeats`` runs with its own peak memory, into ``rows``.

    Best-of because a shared 2-core machine is noisy: the minimum is the figure two runs can compare.
    """

    def __init__(self, device, repeats: int):
        self.device, self.repeats, self.rows = device, repeats, {}

    def record(self, name: str, frames: int, seconds: float, **extra) -> dict:
        row = {"frames": frames, "seconds": round(seconds, 4), "fps": round(frames / seconds, 3) if seconds else None,
               **extra, **memory(self.device)}
        self.rows[name] = row
        more = "".join(f", {k} {v}" for k, v in extra.items())
        print(f"  {name:<26} {row['fps']:9.2f} fps  ({frames} frames in {seconds:.2f} s{more}; {mem_text(row)})", flush=True)
        return row

    def time(self, name: str, frames: int, fn, repeats: int | None = None, **extra):
        reset_peaks(self.device)
        best = math.inf
        for _ in range(repeats or self.repeats):
            t0 = time.perf_counter()
            out = fn()
            sync(self.device)
            best = min(best, time.perf_counter() - t0)
        self.record(name, frames, best, **extra)
        return out


def run_stages(args, device, starter, clip: Path, sizes: set[int]) -> tuple[dict, dict]:
    """Part 1 on the clip's first ``--stage-frames`` frames; returns the rows and the crops/masks per size for part 2."""
    from edidub_engine.acceleration import Acceleration
    from edidub_engine.audio import units_for_shot
    from edidub_engine.config import DubSettings
    from edidub_engine.diffusion import Section
    from edidub_engine.face import FaceTracker, feathered_matte, lower_face_mask, paste_back, track_and_align, warp_crop
    from edidub_engine.media import ClipWriter, Codec, iter_frames, load_audio, load_audio_for_frames, probe_video
    from edidub_engine.pipeline import DubbingPipeline, to_crops

    info = probe_video(clip)
    n = min(args.stage_frames, info.frame_count)
    st = Stages(device, args.repeats)
    print(f"stages on {info.path.name} ({info.width}x{info.height} at {info.rate} fps), first {n} frames, "
          f"starter bundle on {device.type}:")
    if not args.skip_stages:
        st.time("decode", info.frame_count, lambda: sum(1 for _ in iter_frames(info)))
    frames = [f for _, f in iter_frames(info, 0, n)]

    def track():
        with FaceTracker() as tracker:
            return [(t.observation.landmarks, t.alignment) for t in track_and_align(enumerate(frames), tracker=tracker)
                    if t.alignment.valid]

    tracked = st.time("track", n, track)
    if len(tracked) < n:
        raise SystemExit(f"only {len(tracked)} of {n} frames of {clip.name} have a usable face; pick a frontal clip")

    def crops_at(size: int) -> tuple[np.ndarray, np.ndarray]:
        out = [(warp_crop(f, a.matrix_for(size), size), lower_face_mask(lm, a.matrix_for(size), size) > 0.5)
               for f, (lm, a) in zip(frames, tracked)]
        return np.stack([c for c, _ in out]), np.stack([m for _, m in out]).astype(np.uint8)

    settings = DubSettings().with_overrides(**starter.info.defaults)
    pipe = DubbingPipeline(lsd=starter.lsd.to(device), srd=starter.srd.to(device), settings=settings,
                           acceleration=Acceleration.auto(device))
    ls, ss = pipe.lsd_size, pipe.srd_size
    crops = st.time("crop+mask", n, lambda: {s: crops_at(s) for s in (ls, ss)}, sizes=f"{ls}+{ss} px")
    crops.update({s: crops_at(s) for s in sizes - crops.keys()})
    if args.skip_stages:
        return st.rows, crops

    dub16 = load_audio(DUB_AUDIO, sample_rate_hz=16000)
    reset_peaks(device)
    row = measure_units(f"{starter.info.frontend} ({starter.info.name})", starter.encoder.frontend, starter.encoder.codebook,
                        dub16, args.repeats)
    st.record("speech units", int(round(len(dub16) / 16000 * float(info.rate))), row["units_s_per_audio_s"] * len(dub16) / 16000,
              s_per_audio_s=round(row["units_s_per_audio_s"], 5), frontend=row["frontend"])
    if "paper" in args.configs and not args.skip_hubert:
        import torch
        from transformers import HubertConfig, HubertModel

        from edidub_engine.audio import Codebook, HubertFrontend

        torch.manual_seed(0)
        reset_peaks(device)
        hubert = HubertFrontend(HubertModel(HubertConfig(**HUBERT_LARGE)), model_name="hubert-large (random weights)",
                                device=str(device))
        centres = np.random.default_rng(0).standard_normal((200, hubert.feature_dim)).astype(np.float32)
        codebook = Codebook(centres=centres, frontend=hubert.name, frontend_settings=hubert.settings(), seed=0)
        row = measure_units("hubert-large", hubert, codebook, dub16, args.repeats)
        st.record("speech units hubert-large", int(round(len(dub16) / 16000 * float(info.rate))),
                  row["units_s_per_audio_s"] * len(dub16) / 16000, s_per_audio_s=round(row["units_s_per_audio_s"], 5))
        del hubert, codebook

    def units(audio):
        return units_for_shot(starter.encoder, audio, rate=info.rate, start_frame=0, end_frame=n, context_frames=0).shot

    original, dub = units(load_audio_for_frames(info, 0, n)), units(dub16)
    lsd_crops, lsd_masks = crops[ls]
    section = Section(index=0, start=0, end=n, carry=0)
    warm_t0 = time.perf_counter()  # shapes as timed, one step each: allocator, kernels, and compilation on CUDA
    pipe.lip_sync_section(lsd_crops, lsd_masks, original, dub, section=section, carried=None,
                          settings=settings.with_overrides(steps=1, inversion_steps=1))
    srd_crops, srd_masks = crops[ss]
    chunk = settings.srd_chunk_frames
    pipe.restore(srd_crops[:chunk], srd_masks[:chunk], lsd_crops[:chunk], seed=0, settings=settings.with_overrides(srd_steps=1))
    sync(device)
    print(f"  (warm-up {time.perf_counter() - warm_t0:.1f} s, not counted)")

    inv, phases = settings.inversion_steps, []
    reset_peaks(device)
    for _ in range(args.repeats):  # one call runs both phases: split them at the last inversion step's progress report
        marks = [time.perf_counter()]
        sample, _ = pipe.lip_sync_section(lsd_crops, lsd_masks, original, dub, section=section, carried=None, settings=settings,
                                          progress=lambda done, total: (sync(device), marks.append(time.perf_counter())))
        phases.append((marks[inv] - marks[0], marks[-1] - marks[inv]))
    st.record("LSD inversion", n, min(p[0] for p in phases), steps=inv, size=ls)
    st.record("LSD sampling", n, min(p[1] for p in phases), steps=settings.steps, guidance=settings.guidance_scale)
    low = to_crops(sample)
    srd_steps = settings.srd_steps or settings.steps
    restored = st.time("SRD", n, lambda: np.concatenate([
        pipe.restore(srd_crops[a:a + chunk], srd_masks[a:a + chunk], low[a:a + chunk], seed=a, settings=settings)
        for a in range(0, n, chunk)]), steps=srd_steps, size=ss)

    def paste():
        feather = settings.feather_px * ss / 224.0
        return [paste_back(f, r, c, a.matrix_for(ss), feathered_matte(m.astype(np.float32), feather_px=feather))
                for f, r, c, m, (_, a) in zip(frames, restored, srd_crops, srd_masks, tracked)]

    pasted = st.time("paste-back", n, paste)
    with tempfile.TemporaryDirectory() as tmp:
        names = iter(range(1_000_000))

        def encode():  # a new name per run: ClipWriter never overwrites
            with ClipWriter(Path(tmp) / f"bench{next(names)}.mov", width=info.width, height=info.height, rate=info.rate,
                            codec=Codec.PRORES_HQ, timecode=info.start_timecode) as writer:
                for frame in pasted:
                    writer.write(frame)

        st.time("encode ProRes HQ", n, encode)
        frames.clear(), pasted.clear()  # free the held 1080p frames before the end-to-end dub
        end_to_end(args, st, starter, info, Path(tmp))
    return st.rows, crops


def end_to_end(args, st: Stages, starter, info, tmp: Path) -> None:
    """``ShotRenderer.dub_shot`` on the clip's first ``--e2e-frames`` frames at ``--e2e-steps`` (all three step counts)."""
    from edidub_engine.config import DubSettings
    from edidub_engine.render import ShotRenderer
    from edidub_engine.shot import ShotRequest

    n, steps = min(args.e2e_frames, info.frame_count), args.e2e_steps
    renderer = ShotRenderer(starter, settings=DubSettings().with_overrides(**{**starter.info.defaults, "srd_steps": steps}))

    def request(name: str):
        return ShotRequest.from_dict({
            "shot_id": "suite", "source": {"path": str(info.path), "start_frame": 0, "end_frame": n},
            "dub_audio": [{"path": str(DUB_AUDIO)}], "output": {"dir": str(tmp), "name": name, "codec": "prores_hq"},
            "options": {"steps": steps, "inversion_steps": steps},
        })

    if renderer.pipeline.acceleration.compile != "off":  # a compiling fast path: the first dub pays for compilation
        t0 = time.perf_counter()
        renderer.dub_shot(request("e2e_warmup"))
        print(f"  (end-to-end warm-up with compilation {time.perf_counter() - t0:.1f} s, not counted)")
    clip = st.time("end to end (dub_shot)", n, lambda: renderer.dub_shot(request("e2e")), repeats=1, steps=steps)  # one: it publishes a file
    st.rows["end to end (dub_shot)"]["timings"] = clip.qc["timings"]


# ----------------------------------------------------------------------------- part 2: configs
def load_config(name: str, device):
    """``(lsd, srd, settings)``: paper presets with random weights at the paper's settings, or the starter bundle."""
    import torch

    from edidub_engine.config import DubSettings
    from edidub_engine.models import build_model
    from edidub_engine.render import LoadedModels

    if name == "paper":
        torch.manual_seed(0)
        return build_model("lsd-paper").eval().to(device), build_model("srd-paper").eval().to(device), DubSettings()
    starter = LoadedModels.load(STARTER)
    return starter.lsd.to(device), starter.srd.to(device), DubSettings().with_overrides(**starter.info.defaults)


def frame_passes(frames: int, window: int, stride: int, carry: int = 0) -> float:
    """Window frame-passes per generated frame of a section: how many windows cover each new frame, on average."""
    from edidub_engine.diffusion import window_starts

    return len(window_starts(frames, window_frames=window, window_stride=stride)) * min(window, frames) / (frames - carry)


def flops_per_frame(lsd, srd, s) -> dict:
    """FLOPs of one output frame at the config's settings (models.py's FlopCounterMode count on a meta twin)."""
    from edidub_engine.models import count_flops

    def per_frame(model):
        w = s.window_frames
        size = int(model.config.sample_size)
        return count_flops(model, (1, int(model.config.in_channels), w, size, size)) / w

    lsd_f, srd_f = per_frame(lsd), per_frame(srd)
    w_lsd = frame_passes(s.section_frames, s.window_frames, s.window_stride, s.carry_frames)
    w_srd = frame_passes(s.srd_chunk_frames, s.window_frames, s.window_stride)
    cfg = 2 if s.guidance_scale != 1 else 1
    srd_steps = s.srd_steps or s.steps
    lsd_passes = (s.inversion_steps + cfg * s.steps) * w_lsd
    srd_passes = srd_steps * w_srd
    total = lsd_passes * lsd_f + srd_passes * srd_f
    formula = (f"LSD ({s.inversion_steps} inversion + {cfg}x{s.steps} sampling [CFG: cond+null rows]) x {w_lsd:.2f} "
               f"[{s.window_frames}-frame windows, stride {s.window_stride}, {s.section_frames}-frame sections carrying "
               f"{s.carry_frames}] = {lsd_passes:.0f} frame-passes x {lsd_f / 1e9:.2f} GFLOP  +  SRD {srd_steps} x {w_srd:.2f} "
               f"[{s.srd_chunk_frames}-frame chunks] = {srd_passes:.0f} frame-passes x {srd_f / 1e9:.2f} GFLOP")
    print(f"  FLOPs per output frame: {total / 1e12:.3f} TFLOP = {formula}")
    return {"tflops_per_output_frame": total / 1e12, "lsd_gflops_per_frame_pass": lsd_f / 1e9,
            "srd_gflops_per_frame_pass": srd_f / 1e9, "lsd_frame_passes": lsd_passes, "srd_frame_passes": srd_passes,
            "lsd_windows_per_frame": w_lsd, "srd_windows_per_frame": w_srd,
            "formula": formula}


def section_inputs(lsd, srd, crops: dict, frames: int, device) -> dict:
    """Real crops of the clip (ping-pong past its end) as one section of ``frames``, with random units and noise."""
    import torch
    import torch.nn.functional as F

    from edidub_engine.diffusion import null_cond_for
    from edidub_engine.pipeline import mask_tensor, to_tensor

    ls, ss = int(lsd.config.sample_size), int(srd.config.sample_size)
    held = len(crops[ls][0])
    cycle = list(range(held)) + list(range(held - 2, 0, -1)) or [0]
    idx = [cycle[i % len(cycle)] for i in range(frames)]
    g = torch.Generator().manual_seed(0)
    x0 = to_tensor(crops[ls][0][idx]).to(device)
    mask = mask_tensor(crops[ls][1][idx]).to(device)
    units = [torch.randint(0, int(lsd.null_unit), (1, frames, 2), generator=g).to(device) for _ in range(2)]
    cond = {"reference": x0, "mask": mask, "units": units[0]}
    xs = to_tensor(crops[ss][0][idx]).to(device)
    ms = mask_tensor(crops[ss][1][idx]).to(device)
    up = F.interpolate(x0[0].transpose(0, 1), size=(ss, ss), mode="bicubic", align_corners=False).clamp(-1, 1)
    return {
        "lsd": (x0, mask, cond, null_cond_for(cond, null_unit=int(lsd.null_unit)), {**cond, "units": units[1]},
                torch.randn(x0.shape, generator=g).to(device)),
        "srd": (xs, ms, {"low_res": up.transpose(0, 1).unsqueeze(0).contiguous(), "mask": ms},
                torch.randn(xs.shape, generator=g).to(device)),
    }


def denoisers(acc, lsd, srd):
    """The pipeline's denoisers (``DubbingPipeline._run``) on ``acc``'s fast path, from Acceleration's public API.

    Each variant prepares its own copy: ``prepare`` lays weights out channels-last in place.
    """
    lsd_call, srd_call = acc.prepare(copy.deepcopy(lsd)), acc.prepare(copy.deepcopy(srd))

    def run(call, sample, t, **kw):
        with acc.autocast(sample.device):
            return call(acc.layout(sample), t, **kw).sample.float().contiguous()

    import torch

    return (lambda x, t, c: run(lsd_call, torch.cat([x, c["reference"], c["mask"]], 1), t, units=c["units"]),
            lambda x, t, c: run(srd_call, torch.cat([x, c["low_res"], c["mask"]], 1), t))


def step_kinds(acc, settings, lsd, srd, inputs: dict) -> dict:
    """``kind → callable`` running one diffusion step (the first of its phase) on the section, returning its sample."""
    from edidub_engine.diffusion import DiffusionConfig, MaskedDiffusion

    def process(steps, guidance):
        return MaskedDiffusion(config=DiffusionConfig(
            inference_steps=steps, inversion_steps=settings.inversion_steps, guidance_scale=guidance,
            window_frames=settings.window_frames, window_stride=settings.window_stride,
            section_frames=settings.section_frames, carry_frames=settings.carry_frames, **acc.diffusion_overrides()))

    lsd_den, srd_den = denoisers(acc, lsd, srd)
    lsd_proc = process(settings.steps, settings.guidance_scale)
    srd_proc = process(settings.srd_steps or settings.steps, 1.0)
    x0, mask, cond, null, original, noise = inputs["lsd"]
    xs, ms, srd_cond, srd_noise = inputs["srd"]

    def first(steps):
        try:
            return next(steps).sample
        finally:
            steps.close()

    return {
        "lsd_invert": lambda: first(lsd_proc.iter_invert(lsd_den, x0, mask, original)),
        "lsd_sample": lambda: first(lsd_proc.iter_sample(lsd_den, x0, mask, cond, null, latent=noise)),
        "srd_sample": lambda: first(srd_proc.iter_sample(srd_den, xs, ms, srd_cond, latent=srd_noise)),
    }


def run_config(name: str, args, device, crops: dict) -> dict:
    """Part 2 for one config: FLOPs per output frame, then every chosen variant's step times, agreement and implied fps."""
    from edidub_engine.acceleration import Acceleration

    lsd, srd, s = load_config(name, device)
    frames = args.frames or DEFAULT_FRAMES[name]
    cfg = 2 if s.guidance_scale != 1 else 1
    srd_steps = s.srd_steps or s.steps
    print(f"\n{name} config: LSD {lsd.config.sample_size} px, SRD {srd.config.sample_size} px; {s.inversion_steps} inversion "
          f"+ {s.steps} sampling steps (CFG {s.guidance_scale}) + {srd_steps} SRD steps")
    out = {"settings": s.to_dict(), "section_frames": frames, **flops_per_frame(lsd, srd, s)}
    inputs = section_inputs(lsd, srd, crops, frames, device)
    section_passes = frame_passes(frames, s.window_frames, s.window_stride) * frames  # frame-passes in one step's windows
    # per kind: (steps per output frame's trip, frame-passes of one measured step, frame-passes an output frame needs per step, GFLOP/pass)
    plan = {"lsd_invert": (s.inversion_steps, section_passes, out["lsd_windows_per_frame"], out["lsd_gflops_per_frame_pass"]),
            "lsd_sample": (s.steps, cfg * section_passes, cfg * out["lsd_windows_per_frame"], out["lsd_gflops_per_frame_pass"]),
            "srd_sample": (srd_steps, section_passes, out["srd_windows_per_frame"], out["srd_gflops_per_frame_pass"])}
    windows = round(section_passes / min(frames, s.window_frames))
    print(f"  one step on a {frames}-frame section ({windows} window(s) of {min(frames, s.window_frames)} frames), best of "
          f"{args.repeats} after a warm-up; speed-up over the reference, and the step output's agreement with it inside the mask:")
    fields = asdict(Acceleration.reference())
    ref: dict = {}
    variants = {}
    for variant, change in VARIANTS.items():
        fields = {**fields, **change}
        if change.get("compile"):
            fields["compile"] = args.compile_mode
        if variant not in args.variants:
            continue
        acc = Acceleration(**fields)
        row = variants[variant] = {"acceleration": acc.to_dict()}
        try:
            kinds = step_kinds(acc, s, lsd, srd, inputs)
            for kind in args.kinds:
                row[kind] = time_step(kinds[kind], kind, variant, acc, args.repeats, plan[kind], ref,
                                      inputs["srd" if kind == "srd_sample" else "lsd"][1], device)
        except Exception as exc:  # a variant this device cannot run (e.g. no compiler for inductor): say so, go on
            row["error"] = f"{type(exc).__name__}: {exc}"[:500]
            print(f"    {variant:<16} failed: {row['error']}", flush=True)
            continue
        if all(k in row for k in KINDS):
            # an output frame of a long shot: each kind's time per frame-pass x the frame-passes it needs, over its steps
            seconds = sum(n * row[k]["step_s"] / measured * needed for k, (n, measured, needed, _) in plan.items())
            row["implied_fps"] = round(1.0 / seconds, 5)
        del kinds
    out["variants"] = variants
    implied = {v: r["implied_fps"] for v, r in variants.items() if "implied_fps" in r}
    if implied:
        print("  implied fps of a long shot at these step counts: " + ", ".join(f"{v} {f:.3g}" for v, f in implied.items()))
    return out


def time_step(fn, kind: str, variant: str, acc, repeats: int, plan: tuple, ref: dict, mask, device) -> dict:
    """One kind of step for one variant: warm-up (compilation included) apart, then best of ``repeats``."""
    import torch

    reset_peaks(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        sample = fn().float()
    sync(device)
    warm = time.perf_counter() - t0

    def one():
        with torch.no_grad():
            fn()
        sync(device)

    step_s = best_of(repeats, one)
    _, measured, _, gflop = plan
    fig = {"step_s": round(step_s, 5), "warmup_s": round(warm, 3), "gflops_per_s": round(measured * gflop / step_s, 2),
           **memory(device)}
    if acc.compile != "off":
        fig["compile_s"] = round(max(0.0, warm - step_s), 3)
    if variant == "reference":
        ref[kind] = (step_s, sample)
    text = ""
    if kind in ref:
        diff = (sample - ref[kind][1]).abs().max().item()
        psnr = psnr_inside(sample, ref[kind][1], mask) if diff else math.inf
        fig.update(speedup=round(ref[kind][0] / step_s, 4), max_abs_diff=diff, psnr_db=None if math.isinf(psnr) else round(psnr, 2))
        text = f"x{fig['speedup']:5.2f}  max|d| {diff:.1e}  " + ("identical  " if fig["psnr_db"] is None else f"PSNR {psnr:5.1f} dB")
    comp = f", of which compile {fig['compile_s']:.1f} s" if "compile_s" in fig else ""
    print(f"    {variant:<16} {kind:<11} {step_s:9.4f} s/step  {text}  (warm-up {warm:.2f} s{comp}; "
          f"{fig['gflops_per_s']:.0f} GFLOP/s; {mem_text(fig)})", flush=True)
    return fig


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="1080p talking-head clip (default: MEAD M003)")
    parser.add_argument("--configs", default="paper,starter", help="comma-separated from paper, starter")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated from {', '.join(VARIANTS)} "
                        "(cumulative in that order; the reference always runs)")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"step kinds to time, from {', '.join(KINDS)}")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"section frames for the step timings (default {DEFAULT_FRAMES['paper']} paper, {DEFAULT_FRAMES['starter']} starter)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N after the warm-up (default 2)")
    parser.add_argument("--compile-mode", default="default", help="torch.compile mode of +compile (default, reduce-overhead, ...)")
    parser.add_argument("--stage-frames", type=int, default=48, help="frames of the clip for the per-stage timings (default 48)")
    parser.add_argument("--e2e-frames", type=int, default=48, help="frames dubbed end to end (default 48)")
    parser.add_argument("--e2e-steps", type=int, default=2, help="inversion, sampling and SRD steps of the end-to-end dub (default 2)")
    parser.add_argument("--skip-stages", action="store_true", help="skip part 1 (the clip is still tracked for the sections' crops)")
    parser.add_argument("--skip-hubert", action="store_true", help="skip HuBERT-Large speech units (about 1.3 GB of RAM)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="smoke check: starter only, 3 variants, 24 frames, best of 2, 1-step dub")
    parser.add_argument("--json", type=Path, help="write every figure here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="print after/before ratios of two --json files")
    args = parser.parse_args(argv)
    if args.compare:
        import compare

        return compare.main([str(p) for p in args.compare])
    if args.quick:
        args.configs, args.variants = "starter", "reference,+batch_guidance,+batch_windows"
        args.frames, args.repeats, args.stage_frames, args.e2e_frames, args.e2e_steps = 24, 2, 24, 24, 1
        args.skip_hubert = True
    args.configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    args.variants = ["reference"] + [v.strip() for v in args.variants.split(",") if v.strip() and v.strip() != "reference"]
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    for what, got, known in (("configs", args.configs, DEFAULT_FRAMES), ("variants", args.variants, VARIANTS), ("kinds", args.kinds, KINDS)):
        if set(got) - set(known):
            parser.error(f"unknown {what} {sorted(set(got) - set(known))}; choose from {', '.join(known)}")
    if not args.clip.is_file():
        parser.error(f"clip not found: {args.clip}")

    import torch

    from edidub_engine.models import PRESETS
    from edidub_engine.render import LoadedModels

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device()
    env = environment(device)
    print(f"{env['device_name']} ({env['device']}), torch {env['torch']}, {env['threads']} threads, "
          f"commit {env['git_commit'][:12] or '?'}, {env['date']}")
    t0 = time.perf_counter()
    starter = LoadedModels.load(STARTER)
    sizes = {PRESETS[p]().sample_size for p in ("lsd-paper", "srd-paper")} if "paper" in args.configs else set()
    stages, crops = run_stages(args, device, starter, args.clip, sizes)
    del starter
    configs = {name: run_config(name, args, device, crops) for name in args.configs}
    total = time.perf_counter() - t0
    print(f"\nsuite finished in {total:.0f} s")
    if args.json:
        env["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
        write_json(args.json, {"environment": env, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                               "stages": stages, "configs": configs, "suite_s": round(total, 1)})
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
