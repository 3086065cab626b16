#!/usr/bin/env bash
# Reproduce the shipped starter bundle edidub_engine/starter_models/edidub-starter/ on a CPU.
#
#   prepare (4 GRID clips, CC BY 4.0) -> mel codebook fit (32 clusters) -> train lsd -> train srd -> bundle
#
# Deterministic: fixed seeds, one torch thread (OMP/MKL too), CPU only. A re-run gives the same
# weights and the same losses as the model card records (wall times differ with the machine).
# Usage: scripts/train_starter.sh [STAGE...]   stages: prepare lsd srd bundle (default: all)
# Environment: FOOTAGE (folder with grid_*.mpg, default ../shared/footage), WORK (scratch folder,
# default /tmp/edidub-starter-work), PYTHON (default .venv/bin/python), OUT (bundle folder).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
FOOTAGE=${FOOTAGE:-$(cd .. && pwd)/shared/footage}
WORK=${WORK:-/tmp/edidub-starter-work}
OUT=${OUT:-edidub_engine/starter_models/edidub-starter}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 CUDA_VISIBLE_DEVICES="" PYTHONHASHSEED=0
STAGES=${*:-prepare lsd srd bundle}
# `edidub train ...` once cli.py registers it; the module entry point runs the same parser.
GRID_LICENCE="GRID audiovisual sentence corpus (M. Cooke, J. Barker, S. Cunningham, X. Shao, 2006, J. Acoust. Soc. Am. 120(5)), CC BY 4.0; the four clips grid_bbaf2n, grid_brbk7n, grid_lbax4n, grid_lbbc2a (as redistributed in rizkiarm/LipNet's evaluation samples). No other footage."
STARTER_NOTES="A small model for trying the whole dubbing path on a CPU with no downloads. Trained with this repository's trainer on one CPU thread per network: 1500 steps at batch 4 each (LSD: lsd-tiny narrowed to base 24, 32 px, 8-frame windows; SRD: srd-tiny, 64 px, 5-frame windows, low-res side 16-32 px) on 12 s of four GRID speakers; about 20 (LSD) and 15 (SRD) CPU-minutes, 40 and 34 minutes of wall time on a busy shared 2-core machine. Not production quality: blurry, tied to these four faces and voices, weak lip sync, log-mel units (speaker-dependent) instead of HuBERT, and its SRD does not beat plain bicubic upsampling (benchmarks/srd_psnr.py). To train a real one: edidub prepare a large corpus you may train on, edidub codebook fit a HuBERT codebook on single-speaker speech, then edidub train lsd --config lsd-paper and edidub train srd --config srd-paper on GPUs (torchrun for several; the paper: 500k steps, batch 28, about 5 days on one H200)."
mkdir -p "$WORK/videos"

for stage in $STAGES; do
case $stage in
prepare)
  # Only the GRID corpus clips (CC BY 4.0): no other footage goes into a shipped model.
  for f in "$FOOTAGE"/grid_*.mpg; do ln -sf "$f" "$WORK/videos/$(basename "$f")"; done
  # The codebook CLI reads audio files; GRID speech sits in the .mpg, so fit through the API.
  [ -f "$WORK/codebook-mel32.safetensors" ] || "$PYTHON" - "$WORK" <<'PY'
import sys
from pathlib import Path
from edidub_engine.audio import fit_codebook, load_frontend
work = Path(sys.argv[1])
clips = sorted((work / "videos").glob("grid_*.mpg"))
cb = fit_codebook(load_frontend("mel"), clips, clusters=32, max_vectors=1_000_000, seed=0,
                  source="GRID corpus clips " + ", ".join(p.name for p in clips))
cb.save(work / "codebook-mel32.safetensors")
print(f"codebook: {cb.clusters} clusters over {cb.fitted_on['seconds']:.1f} s of GRID speech")
PY
  "$PYTHON" -m edidub_engine prepare "$WORK/videos" -o "$WORK/dataset" --codebook "$WORK/codebook-mel32.safetensors" -q
  ;;
lsd)
  rm -rf "$WORK/run-lsd"
  "$PYTHON" -m edidub_engine.training.commands train lsd --data "$WORK/dataset" -o "$WORK/run-lsd" --config lsd-starter \
    --device cpu -q --data-licence "$GRID_LICENCE"
  ;;
srd)
  rm -rf "$WORK/run-srd"
  "$PYTHON" -m edidub_engine.training.commands train srd --data "$WORK/dataset" -o "$WORK/run-srd" --config srd-starter \
    --device cpu -q --data-licence "$GRID_LICENCE"
  ;;
bundle)
  "$PYTHON" -m edidub_engine.training.commands train bundle --lsd "$WORK/run-lsd" --srd "$WORK/run-srd" \
    --codebook "$WORK/codebook-mel32.safetensors" -o "$OUT" --name edidub-starter --version 1 --overwrite \
    --description "EdiDub starter: a tiny 32 px LSD + 64 px SRD pair with a 32-cluster log-mel codebook, trained on a CPU on 4 GRID clips" \
    --notes "$STARTER_NOTES" --credits "$GRID_LICENCE" \
    --defaults '{"steps": 10, "inversion_steps": 10, "srd_steps": 10}'
  ;;
*) echo "unknown stage $stage (prepare lsd srd bundle)" >&2; exit 2 ;;
esac
done
