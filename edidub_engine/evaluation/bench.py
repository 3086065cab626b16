"""``edidub eval``: dub every clip of a benchmark with another clip's speech and measure, as Table 1 does.

Each clip of BENCH_DIR (its first ``max_seconds``, 5 s as the paper takes of
LRS2/LRS3) is dubbed with the audio of another clip of the same benchmark,
chosen by a seeded shuffle with no clip keeping its own sound.  Every metric is
computed per clip and reported as mean ± standard error over the clips, for the
dubs and for the source clips themselves ("Real Videos").  The run is written
as ``run.json`` (per-clip values, so two runs can be compared with the paired
one-sided Wilcoxon signed-rank test of appendix A), ``qc.html``/``qc.json``
and ``batch.json`` (what ``edidub review`` opens).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import InvalidArgumentError, MediaNotFoundError, OutputExistsError
from . import metrics as M
from .review.manifest import write_batch_manifest

#: (key, column title, lower is better) — the paper's four first, then what needs no foreign weights.
COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("lse_d", "LSE-D↓", True),
    ("lse_c", "LSE-C↑", False),
    ("id_p", "ID-P↓", True),
    ("id_tc", "ID-TC↓", True),
    ("sync_proxy", "SyncProxy↑", False),
    ("copy_corr", "Copy↓", True),
    ("open_change", "Change↑", False),
    ("sync_dub", "SyncLine↑", False),
    ("sync_orig", "SyncOrig↓", True),
    ("psnr_in", "PSNR-in↑", False),
    ("psnr_out", "PSNR-out↑", False),
    ("ssim_in", "SSIM-in↑", False),
    ("ssim_out", "SSIM-out↑", False),
    ("passthrough_fraction", "Pass↓", True),
)
PAPER_COLUMNS = 4
LOWER_IS_BETTER = {k: low for k, _, low in COLUMNS}


def derangement(n: int, seed: int) -> list[int]:
    """A seeded permutation with no fixed point (clip i gets clip p[i]'s audio, never its own)."""
    if n < 2:
        raise InvalidArgumentError("a benchmark needs at least two clips with sound to swap their audio",
                                   hint="add clips to the benchmark folder")
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if not np.any(p == np.arange(n)):
            return [int(i) for i in p]


@dataclass
class BenchClip:
    name: str
    path: Path
    start_frame: int
    end_frame: int
    rate: Fraction
    timecode: str
    donor: Path | None = None


def plan_benchmark(bench_dir: str | Path, *, max_seconds: float = 5.0, seed: int = 0, max_clips: int | None = None) -> tuple[list[BenchClip], list[str]]:
    """The clips of a benchmark folder (those with sound), their ranges and their donors; plus notes on skipped files."""
    from ..media import probe_video
    from .curate import find_clips

    root = Path(bench_dir).expanduser()
    if not root.is_dir():
        raise MediaNotFoundError(f"benchmark folder {root} does not exist", hint="give a folder of video clips")
    clips, notes = [], []
    for path in find_clips(root):
        try:
            info = probe_video(path)
        except Exception as exc:  # noqa: BLE001 - report, skip, go on
            notes.append(f"skipped {path.name}: {exc}")
            continue
        if not info.has_audio:
            notes.append(f"skipped {path.name}: no sound (its audio could not dub another clip)")
            continue
        end = min(info.frame_count, int(round(max_seconds * float(info.rate)))) if max_seconds else info.frame_count
        clips.append(BenchClip(path.stem, info.path, 0, end, info.rate, info.timecode_at(0)))
        if max_clips and len(clips) >= max_clips:
            break
    for clip, donor in zip(clips, derangement(len(clips), seed)):
        clip.donor = clips[donor].path
    return clips, notes


def format_table(rows: dict[str, dict[str, list[float]]], *, benchmark: str, stars: dict[str, dict[str, str]] | None = None,
                 columns: Sequence[tuple[str, str, bool]] = COLUMNS) -> str:
    """Table 1's shape: one row per method, ``mean ± se`` per metric; "n/a" where a metric was not measured."""
    cells = {}
    for method, values in rows.items():
        for key, _, _ in columns:
            mean, se = M.mean_and_standard_error(values.get(key, []))
            if not np.isfinite(mean):
                text = "n/a"
            elif np.isfinite(se):
                text = f"{mean:.3f}±{se:.3f}"
            else:
                text = f"{mean:.3f}"
            if stars and method in stars and key in stars[method]:
                text += f" {stars[method][key]}"
            cells[method, key] = text
    name_w = max(len("Method"), *(len(m) for m in rows))
    widths = {key: max(len(title), *(len(cells[m, key]) for m in rows)) for key, title, _ in columns}
    paper_w = sum(widths[k] + 3 for k, _, _ in columns[:PAPER_COLUMNS]) - 3
    rest_w = sum(widths[k] + 3 for k, _, _ in columns[PAPER_COLUMNS:]) - 3
    lines = [f"{'':{name_w}} | {benchmark[:paper_w]:^{paper_w}} | {'(no foreign weights)':^{rest_w}} |",
             f"{'Method':{name_w}} | " + " | ".join(f"{t:>{widths[k]}}" for k, t, _ in columns) + " |"]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("-" * len(lines[0]))
    for method in rows:
        lines.append(f"{method:{name_w}} | " + " | ".join(f"{cells[method, k]:>{widths[k]}}" for k, _, _ in columns) + " |")
    return "\n".join(lines)


def compare_runs(ours: dict, theirs: dict) -> dict[str, dict]:
    """Paired one-sided Wilcoxon tests (appendix A): does ``ours`` score better than ``theirs``, metric by metric?"""
    a = {c["name"]: c["dub"] for c in ours["clips"]}
    b = {c["name"]: c["dub"] for c in theirs["clips"]}
    common = sorted(set(a) & set(b))
    out = {}
    for key, _, lower in COLUMNS:
        x = [a[n].get(key) for n in common]
        y = [b[n].get(key) for n in common]
        x = [np.nan if v is None else v for v in x]
        y = [np.nan if v is None else v for v in y]
        p = M.wilcoxon_one_sided(x, y, lower_is_better=lower)
        out[key] = {"p": None if not np.isfinite(p) else p, "stars": M.significance_stars(p), "pairs": len(common)}
    return out


def run_benchmark(
    bench_dir: str | Path,
    output_dir: str | Path,
    *,
    models: str | Path | None = None,
    id_weights: str | Path | None = None,
    sync_weights: str | Path | None = None,
    seed: int = 0,
    max_seconds: float = 5.0,
    max_clips: int | None = None,
    codec: str = "h264",
    steps: int | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Dub, measure and report a benchmark; returns the run (also written to ``output_dir/run.json``).

    ``progress(stage, done, total)`` follows each clip's dub (``clip: stage``), as ``edidub dub`` shows it.
    """
    from ..render import LoadedModels, ShotRenderer
    from ..shot import ShotRequest
    from .measure import measure_shot
    from .networks import load_face_embedder, load_sync_expert
    from .qc_report import write_qc_report

    out = Path(output_dir).expanduser()
    if out.exists() and any(out.iterdir()):
        raise OutputExistsError(f"output folder {out} is not empty; an evaluation never overwrites a previous run",
                                hint="choose a new --output folder")
    embedder = load_face_embedder(id_weights) if id_weights else None
    sync = load_sync_expert(sync_weights) if sync_weights else None
    clips, notes = plan_benchmark(bench_dir, max_seconds=max_seconds, seed=seed, max_clips=max_clips)
    for note in notes:
        log(f"  {note}")
    loaded = LoadedModels.load(models)
    renderer = ShotRenderer(loaded)
    (out / "dubs").mkdir(parents=True, exist_ok=True)
    method = f"EdiDub ({loaded.identity.get('name')} {loaded.identity.get('version')})"
    measured, results = [], []
    for i, clip in enumerate(clips, 1):
        t0 = time.perf_counter()
        shot_s = float(Fraction(clip.end_frame - clip.start_frame) / clip.rate)
        request = ShotRequest.from_dict({
            "shot_id": clip.name,
            "source": {"path": str(clip.path), "start_frame": clip.start_frame, "end_frame": clip.end_frame},
            "dub_audio": [{"path": str(clip.donor), "duration_s": shot_s}],
            "output": {"dir": str(out / "dubs"), "codec": codec, "name": f"{clip.name}_dub"},
            "options": {"seed": seed, **({"steps": steps, "inversion_steps": steps} if steps else {})},
        })
        follow = None if progress is None else (lambda stage, done, total, name=clip.name: progress(f"{name}: {stage}", done, total))
        rendered = renderer.dub_shot(request, progress=follow)
        shot = measure_shot(clip.path, clip.start_frame, clip.end_frame, rendered.path, shot_id=clip.name,
                            passthrough=rendered.frames_passed_through, embedder=embedder, sync_expert=sync,
                            dub_cut_s=float(rendered.qc.get("dub_cut_s", 0.0)))
        quality = rendered.qc.get("quality") or {}
        # the render's own QC verdict comes first: a report must never say "no warnings" over a face the QC flagged
        shot.warnings[:0] = [f"QC review: {reason}" for reason in quality.get("reasons", [])]
        measured.append(shot)
        results.append({"name": clip.name, "source": str(clip.path), "start_frame": clip.start_frame, "end_frame": clip.end_frame,
                        "rate": f"{clip.rate.numerator}/{clip.rate.denominator}", "timecode": clip.timecode,
                        "dub_audio": str(clip.donor), "dubbed": rendered.path, "dub": shot.summary, "real": shot.real,
                        "warnings": shot.warnings})
        log(f"  [{i}/{len(clips)}] {clip.name}: dubbed with {clip.donor.name} in {time.perf_counter() - t0:.1f} s")
    rows = {method: {k: [c["dub"].get(k) for c in results] for k, _, _ in COLUMNS},
            "Real Videos": {k: [c["real"].get(k, 0.0 if k == "passthrough_fraction" else None) for c in results] for k, _, _ in COLUMNS}}
    for values in rows.values():
        for k in values:
            values[k] = [np.nan if v is None else v for v in values[k]]
    bench_name = Path(bench_dir).expanduser().resolve().name
    table = format_table(rows, benchmark=f"{bench_name} ({len(results)} clips)")
    missing = [w for w, given in (("--id-weights (ID-P, ID-TC)", embedder), ("--sync-weights (LSE-D, LSE-C)", sync)) if not given]
    run = {"benchmark": str(Path(bench_dir).expanduser()), "method": method, "model": loaded.identity, "seed": seed,
           "max_seconds": max_seconds, "codec": codec, "clips": results, "table": table,
           "not_measured": missing, "notes": notes}
    (out / "run.json").write_text(json.dumps(run, indent=1, default=str) + "\n", encoding="utf-8")
    write_qc_report(measured, out / "qc.html", title=f"EdiDub QC — {bench_name}", table=table, extra={"method": method})
    write_batch_manifest(out, [{"shot_id": c["name"], "original": c["source"], "dubbed": c["dubbed"],
                                "start_frame": c["start_frame"], "end_frame": c["end_frame"], "rate": c["rate"],
                                "timecode": c["timecode"], "warnings": c["warnings"]} for c in results],
                         title=f"{bench_name}: {method}")
    return run


__all__ = ["COLUMNS", "compare_runs", "derangement", "format_table", "plan_benchmark", "run_benchmark", "write_batch_manifest"]
