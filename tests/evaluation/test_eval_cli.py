"""``edidub eval`` end to end on a small benchmark built from ../shared/footage, and the QC report it writes.

The model bundle is the tiny random one (the starter bundle may not exist where tests run), and the measuring
networks have random weights saved to files: this checks the mechanics — dubbing with swapped audio, every
metric present, Table 1's shape, the Wilcoxon comparison, the QC page's pictures — not the scores."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np

from edidub_engine.evaluation.commands import add_eval_parsers
from edidub_engine.evaluation.measure import ShotMeasures
from edidub_engine.evaluation.qc_report import render_html

CLIPS = ["grid_bbaf2n.mpg", "grid_lbbc2a.mpg", "grid_brbk7n.mpg"]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edidub")
    add_eval_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_eval_end_to_end_prints_table_1(tmp_path, footage_path, starter_bundle, random_weights, capsys):
    bench = tmp_path / "bench"
    bench.mkdir()
    for name in CLIPS:
        (bench / name).symlink_to(footage_path(name))
    id_w, sync_w = random_weights
    out = tmp_path / "run"
    assert _run(["eval", str(bench), "--models", str(starter_bundle), "--id-weights", str(id_w), "--sync-weights", str(sync_w),
                 "--seconds", "0.8", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    print(printed)
    header = next(line for line in printed.splitlines() if line.startswith("Method"))
    for title in ("LSE-D↓", "LSE-C↑", "ID-P↓", "ID-TC↓", "SyncProxy↑", "PSNR-in↑", "PSNR-out↑", "Pass↓"):
        assert title in header
    ours = next(line for line in printed.splitlines() if line.startswith("EdiDub (edidub-starter "))
    real = next(line for line in printed.splitlines() if line.startswith("Real Videos"))
    assert "n/a" not in ours.split("|")[1] and re.search(r"\d\.\d{3}±\d\.\d{3}", ours)
    assert real.split("|")[3].strip().startswith("0.000±0.000")  # ID-P of a video against itself

    run = json.loads((out / "run.json").read_text())
    assert [c["name"] for c in run["clips"]] == sorted(n.split(".")[0] for n in CLIPS)
    for clip in run["clips"]:
        assert clip["dub_audio"] != clip["source"]  # every clip speaks another clip's words
        assert {"lse_d", "lse_c", "id_p", "id_tc", "psnr_in", "psnr_out", "ssim_in", "ssim_out", "sync_proxy"} <= set(clip["dub"])
        # A faithful edit can sit within rounding of the source for a random-weight embedder: ID-P is
        # measured (a number, never negative); that the mouth changed is the PSNR line below.
        assert clip["dub"]["id_p"] is not None and clip["dub"]["id_p"] >= 0 and clip["real"]["id_p"] == 0
        assert clip["dub"]["psnr_in"] < clip["dub"]["psnr_out"]  # the mouth changed, the rest much less
    assert {c["dub_audio"] for c in run["clips"]} == {c["source"] for c in run["clips"]}  # a shuffle, not a draw

    html = (out / "qc.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 * len(CLIPS) and html.count("<svg") == len(CLIPS)
    batch = json.loads((out / "batch.json").read_text())
    assert len(batch["shots"]) == len(CLIPS)

    # appendix A: this run against a copy where every dub scored worse on ID-P
    worse = json.loads((out / "run.json").read_text())
    for clip in worse["clips"]:
        clip["dub"]["id_p"] += 0.1
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    from edidub_engine.evaluation.bench import compare_runs

    tests = compare_runs(run, worse)
    assert tests["id_p"]["pairs"] == 3 and tests["id_p"]["p"] == 0.125  # 3 of 3 favourable: 2^-3
    assert tests["psnr_in"]["stars"] == "ns"


def test_qc_report_shows_passthrough_warnings_and_pictures():
    rng = np.random.default_rng(0)
    crop = rng.integers(0, 255, (88, 160, 3), dtype=np.uint8)
    shot = ShotMeasures(
        shot_id="s1", source="/footage/hamilton_mic_occlusion.mp4", start_frame=100, end_frame=140, dubbed="/out/s1.mov", fps=29.97,
        passthrough=[{"start_frame": 10, "end_frame": 20, "reason": "no_face"}],
        summary={"frames": 40, "passthrough_fraction": 0.25, "id_p": 0.02},
        per_frame={"tracking": [1.0] * 10 + [0.0] * 10 + [1.0] * 20, "id_p": [0.01] * 10 + [None] * 10 + [0.03] * 20,
                   "mouth_open_dub": list(np.linspace(0, 1, 40)), "energy_dub_db": list(np.linspace(-60, -20, 40))},
        warnings=["occlusion: a hand covers the face at frame(s) 0-9", "dub longer than shot: 0.40 s"],
        strip=[{"frame": k, "before": crop, "after": crop[::-1], "matte": rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)} for k in (0, 30)],
    )
    page = render_html([shot])
    assert "class=\"passthrough\"" in page and "passed through: no_face" in page
    assert "occlusion: a hand covers" in page and "dub longer than shot" in page
    assert page.count("data:image/png;base64,") == 2
    assert page.count('data-series="identity"') == 2  # the gap of frames without a face splits the line
    assert 'data-series="tracking"' in page and 'data-series="mouth_open_dub"' in page
